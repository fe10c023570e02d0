import ArgumentParser
import VecShardBench

/// `vecshard bench-storage`: WAL throughput against dd, recovery time, IVF_PQ resident
/// memory (see VecShardBench.StorageBenchmark). Data goes under --directory (not the repo).
struct BenchStorageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-storage",
        abstract: "Measure the storage layer: fsync'd upserts vs dd, recovery time, IVF_PQ resident memory."
    )

    @Option(help: "Scratch directory for the data (removed afterwards).") var directory = "/tmp/vecshard-bench-storage"
    @Option(help: "Parts to run, comma-separated: disk,upsert,recovery,memory.") var parts = "disk,upsert,recovery,memory"
    @Option(help: "Vectors of the 128-d upsert runs.") var upsert128 = 200_000
    @Option(help: "Vectors of the 768-d upsert runs.") var upsert768 = 60_000
    @Option(help: "128-d vectors written before the recovery measurements.") var recoveryVectors = 1_000_000
    @Option(help: "768-d IVF_PQ vectors of the memory measurement (scaled to one million).") var memoryVectors = 200_000
    // Child phases (the benchmark re-executes itself for SIGKILL and RSS measurements).
    @Option(help: .hidden) var phase: String?
    @Option(help: .hidden) var childDirectory: String?
    @Option(help: .hidden) var childVectors = 0
    @Flag(help: .hidden) var clean = false

    func run() async throws {
        switch phase {
        case "load": try await StorageBenchmark.childLoad(directory: childDirectory!, vectors: childVectors, clean: clean)
        case "rss": try await StorageBenchmark.childRSS(directory: childDirectory!)
        default:
            var c = StorageBenchmark.Configuration(directory: directory, childCommand: ["bench-storage"])
            c.parts = Set(parts.split(separator: ",").map(String.init))
            c.upsertVectors128 = upsert128
            c.upsertVectors768 = upsert768
            c.recoveryVectors = recoveryVectors
            c.memoryVectors = memoryVectors
            try await StorageBenchmark(c).run()
        }
    }
}
