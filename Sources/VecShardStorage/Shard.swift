#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VecShardPrimitives
import VecShardSchema

/// One shard's storage: a root directory holding its collections
/// (`<root>/collections/<name>/`). Safe to use from many tasks at once.
///
/// While open, the shard holds the directory's lock (`<root>/LOCK`, see
/// `DataDirectoryLock`): a second open of the same directory fails with
/// `dataDirectoryLocked` until `close`. A collection that cannot be opened (a damaged
/// write-ahead log, say) does not fail the shard: it is *refused*, its name answers its
/// error (`collection(_:)`), `refusedCollections` lists it, and the others serve.
public final class Shard: @unchecked Sendable {
    public let directory: String
    public let options: StorageOptions
    private let collections: Locked<[String: ShardCollection]>
    /// Collections that exist on disk but could not be opened, with why.
    private let refused: Locked<[String: StorageError]>
    private let lock: DataDirectoryLock
    private var collectionsDirectory: String { directory + "/collections" }
    private var trashDirectory: String { directory + "/trash" }

    private init(directory: String, options: StorageOptions, collections: [String: ShardCollection],
                 refused: [String: StorageError], lock: DataDirectoryLock) {
        self.directory = directory
        self.options = options
        self.collections = Locked(collections)
        self.refused = Locked(refused)
        self.lock = lock
    }

    /// Opens (creating if needed) the shard in `directory` and recovers every collection.
    public static func open(directory: String, options: StorageOptions = StorageOptions()) async throws -> Shard {
        try await runBlocking { try openNow(directory: directory, options: options) }
    }

    static func openNow(directory: String, options: StorageOptions) throws -> Shard {
        let lock = try DataDirectoryLock.acquire(directory)
        try FileIO.makeDirectories(directory + "/collections")
        FileIO.removeTree(directory + "/trash")
        var found: [String: ShardCollection] = [:]
        var refused: [String: StorageError] = [:]
        for name in FileIO.list(directory + "/collections") {
            let path = directory + "/collections/" + name
            if name.hasPrefix(".") {
                FileIO.removeTree(path) // an interrupted create
                continue
            }
            do {
                found[name] = try ShardCollection.open(directory: path, options: options)
            } catch {
                let e = error as? StorageError ?? .engine("\(error)")
                refused[name] = e
                // (A damaged log was reported by the collection itself, as `walDamageRefused`.)
                if case .walDamaged = e {} else {
                    options.eventHandler?(StorageEvent(kind: .collectionRefused, collection: name,
                                                       message: "not opened, the shard's other collections serve: \(e)"))
                }
            }
        }
        return Shard(directory: directory, options: options, collections: found, refused: refused, lock: lock)
    }

    /// Creates an empty collection. Throws `collectionAlreadyExists` if the name is taken,
    /// `invalidSchema`/`invalidCollectionName` naming the bad knob, `collectionLimitReached`
    /// at `options.maxCollections`, and `diskFull` when there is no room, in which case
    /// nothing of the collection is left behind.
    @discardableResult
    public func createCollection(_ schema: CollectionSchema) async throws -> ShardCollection {
        do { try schema.validate() } catch let e as SchemaError { throw StorageError.invalid(e) }
        return try await runBlocking { try self.createNow(schema) }
    }

    private func createNow(_ schema: CollectionSchema) throws -> ShardCollection {
        if let error = refused.withLock({ $0[schema.name] }) { throw error }
        let refusedCount = refused.withLock { $0.count }
        return try collections.withLock { all in
            if all[schema.name] != nil { throw StorageError.collectionAlreadyExists(schema.name) }
            if all.count + refusedCount >= options.maxCollections {
                throw StorageError.collectionLimitReached(name: schema.name, limit: options.maxCollections)
            }
            let final = collectionsDirectory + "/" + schema.name
            let tmp = collectionsDirectory + "/." + schema.name + ".creating"
            FileIO.removeTree(tmp)
            do {
                try ShardCollection.initializeFiles(schema: schema, directory: tmp)
                try FileIO.rename(tmp, final)
                try FileIO.fsyncDirectory(collectionsDirectory)
            } catch {
                FileIO.removeTree(tmp)
                throw error
            }
            do {
                // A new collection must be writable: its first WAL file is created now.
                let collection = try ShardCollection.open(directory: final, options: options, requireWritable: true)
                all[schema.name] = collection
                return collection
            } catch {
                // Leave nothing behind (a half-created name would be listed, then 404, then 500).
                let doomed = collectionsDirectory + "/." + schema.name + ".failed"
                FileIO.removeTree(doomed)
                if Glibc.rename(final, doomed) == 0 { FileIO.removeTree(doomed) } else { FileIO.removeTree(final) }
                try? FileIO.fsyncDirectory(collectionsDirectory)
                throw error
            }
        }
    }

    /// The collection named `name`, or `collectionNotFound`, or the error that keeps a
    /// refused collection closed (e.g. `walDamaged`).
    public func collection(_ name: String) throws -> ShardCollection {
        if let c = collections.withLock({ $0[name] }) { return c }
        if let error = refused.withLock({ $0[name] }) { throw error }
        throw StorageError.collectionNotFound(name)
    }

    /// Schemas of every open collection, by name.
    public func listCollections() -> [CollectionSchema] {
        collections.withLock { $0.values.map(\.schema) }.sorted { $0.name < $1.name }
    }

    /// Collections on disk that could not be opened, by name, with why.
    public var refusedCollections: [(name: String, error: StorageError)] {
        refused.withLock { $0.map { ($0.key, $0.value) } }.sorted { $0.name < $1.name }
    }

    /// Drops a collection: it disappears at once (atomic rename), then its files are
    /// removed. A refused collection can be dropped too (its files go with it).
    public func dropCollection(_ name: String) async throws {
        let collection = collections.withLock({ $0.removeValue(forKey: name) })
        let wasRefused = collection == nil && refused.withLock { $0.removeValue(forKey: name) } != nil
        guard collection != nil || wasRefused else { throw StorageError.collectionNotFound(name) }
        try await runBlocking {
            collection?.closeNow()
            try FileIO.makeDirectory(self.trashDirectory)
            let doomed = self.trashDirectory + "/" + name + "-" + String(UInt64(Date().timeIntervalSince1970 * 1e9))
            try FileIO.rename(self.collectionsDirectory + "/" + name, doomed)
            try FileIO.fsyncDirectory(self.collectionsDirectory)
            FileIO.removeTree(doomed)
        }
    }

    /// Closes every collection (waits for running flushes and background work) and
    /// releases the directory's lock.
    public func close() async {
        let all = collections.withLock { $0.values }
        for c in all { await c.close() }
        lock.release()
    }
}
