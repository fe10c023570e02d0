import Foundation
import VecShardRouting

/// One rebalance as it is persisted (`rebalance.json`) and reported (`GET /admin/rebalance`):
/// docs/ARCHITECTURE.md, "Online rebalancing".
public struct RebalanceRecord: Codable, Sendable, Equatable {
    public enum Phase: String, Codable, Sendable {
        /// Writes go to the owners under both layouts; the points that change owner are copied.
        case copying
        /// The new layout is the topology; old owners delete what they no longer own.
        case cleaning
        /// Back to the old layout: new owners delete the copies.
        case aborting
        case done, aborted
        /// Stopped by an error that retrying cannot fix (`error` says which); the old layout
        /// still routes and has every write. Abort it.
        case failed
    }

    /// One source shard's part of one collection.
    public struct Task: Codable, Sendable, Equatable {
        public var collection: String
        public var source: String
        public var copied: UInt64 = 0
        public var done = false
    }

    public var id: String
    public var phase: Phase
    public var from: Topology
    public var to: Topology
    /// Above every version any shard held when the rebalance started; dual writes are stamped
    /// at or above it, copies of older points get `startVersion - 1`.
    public var startVersion: UInt64
    public var startedAt: Date
    public var finishedAt: Date?
    /// Live points of the moving collections on the old layout when it started.
    public var totalPoints: UInt64
    public var collections: [String]
    public var tasks: [Task]
    /// Old copies deleted after the flip (or new copies after an abort).
    public var removedPoints: UInt64 = 0
    /// The last error met (retried unless `phase` is failed).
    public var error: String?

    public var movedPoints: UInt64 { tasks.reduce(0) { $0 + $1.copied } }

    public var isRunning: Bool { phase == .copying || phase == .cleaning || phase == .aborting }

    /// The state `GET /admin/rebalance` answers: running, done, failed or aborted.
    public var state: String {
        switch phase {
        case .copying, .cleaning, .aborting: return "running"
        case .done: return "done"
        case .aborted: return "aborted"
        case .failed: return "failed"
        }
    }
}

/// Where a router keeps its rebalance state and the topology it routes by, so a restarted
/// router resumes (the router's data directory; etcd once the topology lives there).
public protocol RebalanceStore: Sendable {
    func load() throws -> (rebalance: RebalanceRecord?, topology: Topology?)
    func save(_ record: RebalanceRecord) throws
    func save(topology: Topology) throws
}

/// `rebalance.json` and `topology.json` in a directory, each replaced atomically (temporary
/// file, fsync, rename, fsync of the directory): a crash leaves the old or the new content.
public struct FileRebalanceStore: RebalanceStore {
    public let directory: String

    public init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    public func load() throws -> (rebalance: RebalanceRecord?, topology: Topology?) {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        func read<T: Decodable>(_ name: String, _ type: T.Type) throws -> T? {
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else { return nil }
            do { return try decoder.decode(T.self, from: data) } catch {
                throw RebalanceStoreError("\(directory)/\(name) is damaged (\(error)); move it away to start without it")
            }
        }
        return (try read("rebalance.json", RebalanceRecord.self), try read("topology.json", Topology.self))
    }

    public func save(_ record: RebalanceRecord) throws { try write("rebalance.json", record) }

    public func save(topology: Topology) throws { try write("topology.json", topology) }

    private func write<T: Encodable>(_ name: String, _ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .iso8601
        let bytes = [UInt8](try encoder.encode(value))
        let path = directory + "/" + name, tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RebalanceStoreError("cannot write \(tmp): errno \(errno)") }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                close(fd)
                throw RebalanceStoreError("cannot write \(tmp): errno \(errno)")
            }
            offset += n
        }
        guard fsync(fd) == 0 else {
            close(fd)
            throw RebalanceStoreError("cannot fsync \(tmp): errno \(errno)")
        }
        close(fd)
        guard rename(tmp, path) == 0 else { throw RebalanceStoreError("cannot rename \(tmp): errno \(errno)") }
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            _ = fsync(dir)
            close(dir)
        }
    }
}

/// Keeps state in memory (tests, standalone mode).
public final class MemoryRebalanceStore: RebalanceStore, @unchecked Sendable {
    private let lock = NSLock()
    private var record: RebalanceRecord?
    private var topology: Topology?

    public init() {}

    public func load() throws -> (rebalance: RebalanceRecord?, topology: Topology?) { lock.withLock { (record, topology) } }
    public func save(_ record: RebalanceRecord) throws { lock.withLock { self.record = record } }
    public func save(topology: Topology) throws { lock.withLock { self.topology = topology } }
}

public struct RebalanceStoreError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The router's in-memory side of the running rebalance.
struct RebalanceRuntime {
    var record: RebalanceRecord?
    var worker: Task<Void, Never>?
    /// An abort was asked for: the copy stops at its next page.
    var abortRequested = false
    /// A topology change is being applied (checked and started under this lock).
    var changing = false
    /// The worker decided to flip (an abort from now on is refused).
    var flipping = false
    /// Copy progress (points whose version range was passed) for the ETA: per task, 0 ... 1.
    var progress: [Int: Double] = [:]
}
