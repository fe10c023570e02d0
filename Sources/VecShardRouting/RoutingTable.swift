/// A topology compiled for routing: shard-name hashes precomputed, groups indexed by name.
/// Immutable; the router swaps in a new one when the topology changes (and, while a rebalance
/// copies, writes by two of them: ClusterRouter+Rebalance.swift).
public struct RoutingTable: Sendable {
    public struct Group: Sendable {
        public var name: String
        public var shards: [ShardDescriptor]
        var shardHashes: [UInt64]
    }

    public let topology: Topology
    public let groups: [Group]
    private let groupIndex: [String: Int]
    public init(_ topology: Topology) throws {
        try topology.validate()
        self.topology = topology
        groups = topology.groups.map { Group(name: $0.name, shards: $0.shards, shardHashes: $0.shards.map { StableHash.xxh64($0.name) }) }
        groupIndex = Dictionary(uniqueKeysWithValues: groups.enumerated().map { ($1.name, $0) })
    }

    /// Where one point goes.
    public struct Target: Sendable, Equatable {
        public var group: String
        public var shard: String
    }

    /// The group for a collection's point, from its shard-key value (as text) if the collection
    /// has a shard key; the default group (or the first group for unlisted collections) otherwise.
    public func group(forCollection collection: String, shardKeyValue: String?) -> Int {
        guard let routing = topology.collections[collection] else { return 0 }
        if routing.shardKey != nil, let value = shardKeyValue, let name = routing.groups[value], let index = groupIndex[name] {
            return index
        }
        return groupIndex[routing.defaultGroup] ?? 0
    }

    public func target(collection: String, id: String, shardKeyValue: String?) -> Target {
        let g = group(forCollection: collection, shardKeyValue: shardKeyValue)
        return Target(group: groups[g].name, shard: owner(of: id, inGroup: g))
    }

    /// The shard of group `group` (an index into `groups`) that owns `id`.
    public func owner(of id: String, inGroup group: Int) -> String {
        let g = groups[group]
        return g.shards[Placement.owner(ofIDHash: StableHash.xxh64(id), amongShardHashes: g.shardHashes)].name
    }

    /// The groups a search must ask. `pinnedValues`: the values the filter allows for the
    /// collection's shard key (equality: one, IN: several), or nil when the filter does not pin
    /// it, in which case every group the collection can live in is asked.
    public func groupsToSearch(collection: String, pinnedValues: [String]?) -> [Int] {
        guard let routing = topology.collections[collection] else { return [0] }
        guard routing.shardKey != nil, let values = pinnedValues else {
            let names = Set([routing.defaultGroup] + routing.groups.values)
            return groups.indices.filter { names.contains(groups[$0].name) }
        }
        let picked = Set(values.map { group(forCollection: collection, shardKeyValue: $0) })
        return picked.sorted()
    }

    /// Every group other than `group` that the collection's points could have lived in before a
    /// shard-key change (where a moved point's stale copy must be deleted).
    public func otherGroups(collection: String, than group: Int) -> [Int] {
        groupsToSearch(collection: collection, pinnedValues: nil).filter { $0 != group }
    }
}
