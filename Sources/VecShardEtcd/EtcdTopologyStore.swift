import Foundation
import NIOCore
import VecShardHTTP
import VecShardRouting

/// `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`: the etcd members to try and the key prefix the
/// topology lives under (docs/ARCHITECTURE.md, "the topology in etcd").
public struct EtcdURL: Sendable, Equatable, CustomStringConvertible {
    public var endpoints: [Peer]
    /// Starts with "/" and does not end with one ("/vecshard").
    public var prefix: String

    public init(_ text: String) throws {
        guard text.hasPrefix("etcd://") else { throw EtcdURLError("'\(text)' does not start with etcd://") }
        let rest = text.dropFirst("etcd://".count)
        guard let slash = rest.firstIndex(of: "/") else {
            throw EtcdURLError("'\(text)' has no key prefix: write etcd://HOST:PORT[,HOST:PORT...]/PREFIX")
        }
        let hosts = rest[..<slash].split(separator: ",", omittingEmptySubsequences: false)
        var endpoints: [Peer] = []
        for host in hosts {
            guard let peer = Peer(String(host)), peer.port > 0, !peer.host.isEmpty else {
                throw EtcdURLError("'\(host)' in '\(text)' is not HOST:PORT")
            }
            endpoints.append(peer)
        }
        guard !endpoints.isEmpty else { throw EtcdURLError("'\(text)' names no etcd member") }
        var prefix = String(rest[slash...])
        while prefix.count > 1 && prefix.hasSuffix("/") { prefix.removeLast() }
        guard prefix.count > 1 else { throw EtcdURLError("'\(text)' has an empty key prefix: write etcd://HOST:PORT/PREFIX, e.g. /vecshard") }
        guard !prefix.contains("//") else { throw EtcdURLError("the key prefix '\(prefix)' of '\(text)' has an empty segment") }
        (self.endpoints, self.prefix) = (endpoints, prefix)
    }

    public var description: String { "etcd://" + endpoints.map(\.description).joined(separator: ",") + prefix }
    /// Where the topology document is.
    public var topologyKey: String { prefix + "/topology" }
}

public struct EtcdURLError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The topology document in etcd: read, seeded, replaced by compare-and-swap on its mod revision.
public struct EtcdTopologyStore: Sendable {
    public let url: EtcdURL
    public let kv: EtcdKV

    public init(url: EtcdURL, http: HTTP2Client, timeout: TimeAmount = .seconds(5)) {
        self.url = url
        kv = EtcdKV(endpoints: url.endpoints, http: http, timeout: timeout)
    }

    /// The stored topology (nil: none yet) and the mod revision of its key (0 when absent).
    public func read() async throws -> (topology: Topology?, modRevision: Int64) {
        let (entry, _) = try await kv.get(url.topologyKey)
        guard let entry else { return (nil, 0) }
        let topology: Topology
        do {
            topology = try JSONDecoder().decode(Topology.self, from: Data(entry.value))
            try topology.validate()
        } catch {
            throw TopologyStoreError.notATopology(key: url.topologyKey, reason: "\(error)")
        }
        return (topology, entry.modRevision)
    }

    /// Writes `proposed` if it is valid and, when a topology is stored, its version is higher
    /// and `expectedVersion` (If-Match) is the stored one. Nothing is written otherwise.
    /// Answers the revision of the write.
    @discardableResult
    public func replace(with proposed: Topology, expectedVersion: UInt64?) async throws -> Int64 {
        do { try proposed.validate() } catch { throw TopologyStoreError.invalid("\(error)") }
        let (current, revision) = try await read()
        if let expectedVersion, expectedVersion != current?.version {
            throw TopologyStoreError.versionMismatch(stored: current?.version, expected: expectedVersion)
        }
        if let current, proposed.version <= current.version {
            throw TopologyStoreError.invalid("topology version \(proposed.version) does not advance the stored version \(current.version)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let written = try await kv.compareAndSwap(url.topologyKey, expectedModRevision: revision, Array(try encoder.encode(proposed))) else {
            throw TopologyStoreError.conflict(key: url.topologyKey)
        }
        return written
    }
}

public enum TopologyStoreError: Error, Equatable, CustomStringConvertible {
    case notATopology(key: String, reason: String)
    case invalid(String)
    case versionMismatch(stored: UInt64?, expected: UInt64)
    case conflict(key: String)

    public var description: String {
        switch self {
        case .notATopology(let key, let reason): return "etcd key \(key) holds something that is not a valid topology: \(reason)"
        case .invalid(let reason): return reason
        case .versionMismatch(let stored, let expected):
            return "the stored topology version is \(stored.map(String.init) ?? "none (etcd holds no topology)"), not \(expected) as expected"
        case .conflict(let key): return "\(key) changed while this change was made; read it again and retry"
        }
    }
}
