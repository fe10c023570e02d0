#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One shard's storage: a root directory holding its collections
/// (`<root>/collections/<name>/`). Safe to use from many tasks at once.
public final class Shard: @unchecked Sendable {
    public let directory: String
    public let options: StorageOptions
    private let collections: Locked<[String: ShardCollection]>
    private var collectionsDirectory: String { directory + "/collections" }
    private var trashDirectory: String { directory + "/trash" }

    private init(directory: String, options: StorageOptions, collections: [String: ShardCollection]) {
        self.directory = directory
        self.options = options
        self.collections = Locked(collections)
    }

    /// Opens (creating if needed) the shard in `directory` and recovers every collection.
    public static func open(directory: String, options: StorageOptions = StorageOptions()) async throws -> Shard {
        try await runBlocking { try openNow(directory: directory, options: options) }
    }

    static func openNow(directory: String, options: StorageOptions) throws -> Shard {
        try FileIO.makeDirectories(directory + "/collections")
        FileIO.removeTree(directory + "/trash")
        var found: [String: ShardCollection] = [:]
        for name in FileIO.list(directory + "/collections") {
            let path = directory + "/collections/" + name
            if name.hasPrefix(".") {
                FileIO.removeTree(path) // an interrupted create
                continue
            }
            found[name] = try ShardCollection.open(directory: path, options: options)
        }
        return Shard(directory: directory, options: options, collections: found)
    }

    /// Creates an empty collection. Throws `collectionAlreadyExists` if the name is taken
    /// and `invalidSchema`/`invalidCollectionName` naming the bad knob.
    @discardableResult
    public func createCollection(_ schema: CollectionSchema) async throws -> ShardCollection {
        try schema.validate()
        return try await runBlocking { try self.createNow(schema) }
    }

    private func createNow(_ schema: CollectionSchema) throws -> ShardCollection {
        try collections.withLock { all in
            if all[schema.name] != nil { throw StorageError.collectionAlreadyExists(schema.name) }
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
            let collection = try ShardCollection.open(directory: final, options: options)
            all[schema.name] = collection
            return collection
        }
    }

    /// The collection named `name`, or `collectionNotFound`.
    public func collection(_ name: String) throws -> ShardCollection {
        guard let c = collections.withLock({ $0[name] }) else { throw StorageError.collectionNotFound(name) }
        return c
    }

    /// Schemas of every collection, by name.
    public func listCollections() -> [CollectionSchema] {
        collections.withLock { $0.values.map(\.schema) }.sorted { $0.name < $1.name }
    }

    /// Drops a collection: it disappears at once (atomic rename), then its files are removed.
    public func dropCollection(_ name: String) async throws {
        guard let collection = collections.withLock({ $0.removeValue(forKey: name) }) else {
            throw StorageError.collectionNotFound(name)
        }
        try await runBlocking {
            collection.closeNow()
            try FileIO.makeDirectory(self.trashDirectory)
            let doomed = self.trashDirectory + "/" + name + "-" + String(UInt64(Date().timeIntervalSince1970 * 1e9))
            try FileIO.rename(self.collectionsDirectory + "/" + name, doomed)
            try FileIO.fsyncDirectory(self.collectionsDirectory)
            FileIO.removeTree(doomed)
        }
    }

    /// Closes every collection (waits for running flushes and background work).
    public func close() async {
        let all = collections.withLock { $0.values }
        for c in all { await c.close() }
    }
}
