import ArgumentParser
import VecShardStorage
import VecShardTesting

/// `vecshard storage-stress` (hidden): the child process of the storage crash tests.
/// Opens a shard directory, runs concurrent writers of `StorageStressWorkload`, and prints
/// "ack <writer> <index>" (flushed) after each acknowledged operation, until killed or
/// `--operations` per writer are done.
struct StorageStressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage-stress",
        abstract: "Crash-test workload: concurrent upserts/deletes, one stdout line per acknowledged write.",
        shouldDisplay: false
    )

    @Option(help: "Shard directory (created if missing).") var directory: String
    @Option(help: "Collection name (created if missing).") var collection = "stress"
    @Option(help: "Seed of this run's operations.") var seed: UInt64 = 1
    @Option(help: "Concurrent writer tasks.") var writers = 4
    @Option(help: "Distinct ids per writer.") var idsPerWriter = 100
    @Option(help: "Vector dimension.") var dimension = 8
    @Option(help: "Operations per writer (then exit).") var operations = 1_000_000
    @Option(help: "Rows after which the growing segment is sealed.") var sealRows = 300

    func run() async throws {
        let workload = StorageStressWorkload(seed: seed, writers: writers, idsPerWriter: idsPerWriter, dimension: dimension)
        try await workload.run(directory: directory, collection: collection, sealRows: sealRows, operations: operations,
                               emit: StorageStressWorkload.writeLine)
    }
}
