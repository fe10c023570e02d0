import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import VecShardStorage

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
        let options = StorageOptions(thresholds: SegmentThresholds(sealRows: sealRows))
        let shard = try await Shard.open(directory: directory, options: options)
        let target: ShardCollection
        if let existing = try? shard.collection(collection) {
            target = existing
        } else {
            target = try await shard.createCollection(StorageStressWorkload.schema(name: collection, dimension: dimension))
        }
        emit("ready \(target.count)")
        let workload = StorageStressWorkload(seed: seed, writers: writers, idsPerWriter: idsPerWriter, dimension: dimension)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                group.addTask {
                    for i in 0..<operations {
                        switch workload.operation(writer: w, index: i) {
                        case let .upsert(points): try await target.upsert(points)
                        case let .delete(ids): try await target.delete(ids: ids)
                        }
                        emit(StorageStressWorkload.ackLine(writer: w, index: i))
                    }
                }
            }
            try await group.waitForAll()
        }
        await shard.close()
    }
}

/// Writes one line to stdout unbuffered (one write(2), so lines of concurrent writers do
/// not interleave and a line is out before the next operation starts).
private func emit(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    bytes.withUnsafeBytes { raw in
        var done = 0
        while done < raw.count {
            let n = write(1, raw.baseAddress! + done, raw.count - done)
            if n <= 0 { return }
            done += n
        }
    }
}
