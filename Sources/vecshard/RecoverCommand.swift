import ArgumentParser
import Foundation
import VecShardStorage

/// `vecshard recover`: the operator's path past a damaged write-ahead log. Without
/// `--accept-data-loss` it only reports (every collection's recovery, and the damage that
/// keeps a collection closed) and exits 1 if some collection is refused. With it, a damaged
/// log is cut at the damage: the records after it are lost, the damaged files are renamed
/// aside (`<file>.damaged-<unix seconds>`, never deleted), and the collection opens again
/// at the next start. Takes the data directory's lock, so the service must be stopped.
struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Report write-ahead-log damage; with --accept-data-loss, cut damaged logs so their collections open again."
    )

    @Option(name: .customLong("data-dir"), help: "The service's --data-dir (standalone: its shards/<name> directories; or one shard's directory).")
    var dataDir: String
    @Option(help: "Only this collection (default: every collection of every shard).") var collection: String?
    @Flag(name: .customLong("accept-data-loss"), help: "Cut each damaged log at its damage; the records after it are lost (the damaged files are kept aside).")
    var acceptDataLoss = false

    func run() async throws {
        let fm = FileManager.default
        var shardDirectories: [String] = []
        if fm.fileExists(atPath: dataDir + "/collections") { shardDirectories.append(dataDir) }
        let shardsRoot = dataDir + "/shards"
        for name in ((try? fm.contentsOfDirectory(atPath: shardsRoot)) ?? []).sorted()
        where fm.fileExists(atPath: shardsRoot + "/" + name + "/collections") {
            shardDirectories.append(shardsRoot + "/" + name)
        }
        guard !shardDirectories.isEmpty else {
            throw ValidationError("no shard data under \(dataDir): expected \(dataDir)/collections or \(dataDir)/shards/<name>/collections")
        }
        // Standalone layout: the service's own lock too (a shard directory's lock is taken by Shard.open).
        let serviceLock = shardDirectories.contains(dataDir) ? nil : try DataDirectoryLock.acquire(dataDir)
        defer { serviceLock?.release() }
        var refusedCount = 0
        for directory in shardDirectories {
            var options = StorageOptions(automaticMaintenance: false)
            if acceptDataLoss {
                if let collection { options.acceptWALDamageCollections = [collection] } else { options.acceptWALDamage = true }
            }
            options.eventHandler = { event in
                FileHandle.standardError.write(Data("warning: \(event.description)\n".utf8))
            }
            let shard = try await Shard.open(directory: directory, options: options)
            for schema in shard.listCollections() where collection == nil || schema.name == collection {
                let c = try shard.collection(schema.name)
                let r = c.recovery
                var line = "\(directory): collection '\(schema.name)': ok, \(r.recordsReplayed) records replayed, \(c.count) points"
                if let loss = r.acceptedLoss { line += "; DATA LOSS ACCEPTED: \(loss)" } else if !r.damage.isEmpty { line += "; torn tail cut" }
                print(line)
            }
            for (name, error) in shard.refusedCollections where collection == nil || name == collection {
                refusedCount += 1
                print("\(directory): collection '\(name)': REFUSED: \(error)")
            }
            await shard.close()
        }
        if refusedCount > 0 {
            print(acceptDataLoss ? "\(refusedCount) collection(s) still refused (not write-ahead-log damage; see above)"
                                 : "\(refusedCount) collection(s) refused; rerun with --accept-data-loss to cut their logs at the damage (the records after it are lost)")
            throw ExitCode(1)
        }
    }
}
