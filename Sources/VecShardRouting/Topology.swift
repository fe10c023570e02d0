/// The cluster's layout: shard groups → shards → replica addresses, and per collection which
/// metadata field (the shard key) picks a group. Versioned: every accepted change increases
/// `version`, and `PUT /admin/topology` takes the version it replaces (optimistic concurrency).
///
/// YAML or JSON, e.g.
/// ```yaml
/// version: 1
/// groups:
///   - name: main
///     shards:
///       - {name: s0, replicas: ["10.0.0.1:7000", "10.0.0.2:7000"]}
///       - {name: s1, replicas: ["10.0.0.3:7000", "10.0.0.4:7000"]}
///   - name: books
///     shards:
///       - {name: b0, replicas: ["10.0.1.1:7000", "10.0.1.2:7000"]}
/// collections:
///   products: {shard_key: category, groups: {books: books}, default_group: main}
/// ```
public struct Topology: Codable, Sendable, Equatable {
    public var version: UInt64
    public var groups: [ShardGroup]
    /// Collections not listed here use the first group for everything.
    public var collections: [String: CollectionRouting]

    public init(version: UInt64, groups: [ShardGroup], collections: [String: CollectionRouting] = [:]) {
        self.version = version
        self.groups = groups
        self.collections = collections
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(UInt64.self, forKey: .version)
        groups = try c.decode([ShardGroup].self, forKey: .groups)
        collections = try c.decodeIfPresent([String: CollectionRouting].self, forKey: .collections) ?? [:]
    }

    public func group(named name: String) -> ShardGroup? { groups.first { $0.name == name } }

    /// Every shard, with its group.
    public var allShards: [(group: String, shard: ShardDescriptor)] {
        groups.flatMap { g in g.shards.map { (g.name, $0) } }
    }
}

public struct ShardGroup: Codable, Sendable, Equatable {
    public var name: String
    public var shards: [ShardDescriptor]

    public init(name: String, shards: [ShardDescriptor]) {
        self.name = name
        self.shards = shards
    }
}

public struct ShardDescriptor: Codable, Sendable, Equatable {
    /// Unique in the topology; placement hashes it, so renaming a shard moves its points.
    public var name: String
    /// `host:port` of each replica's gRPC endpoint (empty for in-process shards).
    public var replicas: [String]

    public init(name: String, replicas: [String] = []) {
        self.name = name
        self.replicas = replicas
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        replicas = try c.decodeIfPresent([String].self, forKey: .replicas) ?? []
    }
}

public struct CollectionRouting: Codable, Sendable, Equatable {
    /// The metadata field whose value picks the group; nil: every point goes to `defaultGroup`.
    public var shardKey: String?
    /// Shard-key value (as text: `books`, `2021`, `true`) → group name.
    public var groups: [String: String]
    /// Where values with no entry in `groups` go.
    public var defaultGroup: String

    public init(shardKey: String?, groups: [String: String] = [:], defaultGroup: String) {
        self.shardKey = shardKey
        self.groups = groups
        self.defaultGroup = defaultGroup
    }

    enum CodingKeys: String, CodingKey {
        case shardKey = "shard_key", groups, defaultGroup = "default_group"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        shardKey = try c.decodeIfPresent(String.self, forKey: .shardKey)
        groups = try c.decodeIfPresent([String: String].self, forKey: .groups) ?? [:]
        defaultGroup = try c.decode(String.self, forKey: .defaultGroup)
    }
}

/// Why a topology was refused; every message names the offending group, shard or address.
public enum TopologyError: Error, Equatable, Sendable, CustomStringConvertible {
    case noGroups
    case emptyGroupName
    case duplicateGroup(String)
    case emptyGroup(String)
    case emptyShardName(group: String)
    case duplicateShard(String)
    case invalidAddress(shard: String, address: String)
    case duplicateAddress(String, shards: [String])
    case mixedReplicaCounts(group: String)
    case unknownGroup(collection: String, group: String)
    case staleVersion(current: UInt64, proposed: UInt64)
    case removedShardHoldsData(shard: String, points: UInt64)

    public var description: String {
        switch self {
        case .noGroups: return "topology has no shard groups"
        case .emptyGroupName: return "a shard group has an empty name"
        case .duplicateGroup(let g): return "shard group '\(g)' appears twice"
        case .emptyGroup(let g): return "shard group '\(g)' has no shards"
        case .emptyShardName(let g): return "a shard of group '\(g)' has an empty name"
        case .duplicateShard(let s): return "shard '\(s)' appears twice (shard names are unique across groups)"
        case .invalidAddress(let s, let a): return "replica address '\(a)' of shard '\(s)' is not host:port"
        case .duplicateAddress(let a, let shards): return "replica address \(a) is used twice (shards \(shards.joined(separator: ", ")))"
        case .mixedReplicaCounts(let g): return "shards of group '\(g)' mix in-process (no replicas) and remote replicas"
        case .unknownGroup(let c, let g): return "collection '\(c)' routes to unknown shard group '\(g)'"
        case .staleVersion(let current, let proposed): return "topology version \(proposed) does not advance the current version \(current)"
        case .removedShardHoldsData(let s, let n): return "shard '\(s)' would be removed but still holds \(n) points; move them first"
        }
    }
}

extension Topology {
    /// Checks the document on its own (what `vecshard topology validate FILE` runs).
    public func validate() throws {
        guard !groups.isEmpty else { throw TopologyError.noGroups }
        var groupNames = Set<String>(), shardNames = Set<String>()
        var addresses: [String: String] = [:]
        for group in groups {
            guard !group.name.isEmpty else { throw TopologyError.emptyGroupName }
            guard groupNames.insert(group.name).inserted else { throw TopologyError.duplicateGroup(group.name) }
            guard !group.shards.isEmpty else { throw TopologyError.emptyGroup(group.name) }
            if Set(group.shards.map { $0.replicas.isEmpty }).count > 1 { throw TopologyError.mixedReplicaCounts(group: group.name) }
            for shard in group.shards {
                guard !shard.name.isEmpty else { throw TopologyError.emptyShardName(group: group.name) }
                guard shardNames.insert(shard.name).inserted else { throw TopologyError.duplicateShard(shard.name) }
                for address in shard.replicas {
                    guard Self.isHostPort(address) else { throw TopologyError.invalidAddress(shard: shard.name, address: address) }
                    if let other = addresses[address] { throw TopologyError.duplicateAddress(address, shards: [other, shard.name]) }
                    addresses[address] = shard.name
                }
            }
        }
        for name in collections.keys.sorted() {
            let routing = collections[name]!
            for group in [routing.defaultGroup] + routing.groups.keys.sorted().map({ routing.groups[$0]! }) where !groupNames.contains(group) {
                throw TopologyError.unknownGroup(collection: name, group: group)
            }
        }
    }

    /// Checks a proposed replacement of `self`: valid on its own, a higher version, and no shard
    /// that still holds points disappears (`pointCounts`: shard name → live points, as known).
    public func validateReplacement(by proposed: Topology, pointCounts: [String: UInt64]) throws {
        try proposed.validate()
        guard proposed.version > version else { throw TopologyError.staleVersion(current: version, proposed: proposed.version) }
        let kept = Set(proposed.allShards.map(\.shard.name))
        for (_, shard) in allShards where !kept.contains(shard.name) {
            if let points = pointCounts[shard.name], points > 0 { throw TopologyError.removedShardHoldsData(shard: shard.name, points: points) }
        }
    }

    static func isHostPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return false }
        return colon != text.startIndex
    }
}
