import Testing
@testable import VecShardRouting

@Suite struct PlacementTests {
    /// Reference values of XXH64 (seed 0), from the xxHash specification's test vectors.
    @Test func xxh64MatchesTheReference() {
        #expect(StableHash.xxh64("") == 0xEF46_DB37_51D8_E999)
        #expect(StableHash.xxh64("a") == 0xD24E_C4F1_A98C_6E5B)
        #expect(StableHash.xxh64("abc") == 0x44BC_2CF5_AD77_0999)
        #expect(StableHash.xxh64("Nobody inspects the spammish repetition") == 0xFBCE_A83C_8A37_8BF1)
        let long = String(repeating: "0123456789abcdef", count: 8) // exercises the 32-byte stripes
        #expect(StableHash.xxh64(long) == StableHash.xxh64(long))
        #expect(StableHash.xxh64(long) != StableHash.xxh64(long + "x"))
    }

    @Test func ownerIsStableAndIndependentOfShardOrder() {
        let shards = ["s0", "s1", "s2", "s3"]
        for i in 0..<1000 {
            let id = "point-\(i)"
            let owner = shards[Placement.owner(ofID: id, among: shards)]
            #expect(shards.reversed()[Placement.owner(ofID: id, among: Array(shards.reversed()))] == owner)
            #expect(shards[Placement.owner(ofID: id, among: shards)] == owner)
        }
    }

    @Test(arguments: [1, 2, 4, 7, 16])
    func growingAGroupMovesAboutOneInNPlusOneOnlyToTheNewShard(_ n: Int) {
        let before = (0..<n).map { "shard-\($0)" }
        let after = before + ["shard-\(n)"]
        let ids = 50_000
        var moved = 0
        for i in 0..<ids {
            let id = "id-\(i)"
            let old = before[Placement.owner(ofID: id, among: before)]
            let new = after[Placement.owner(ofID: id, among: after)]
            if old != new {
                moved += 1
                #expect(new == "shard-\(n)", "an id moved between two old shards")
            }
        }
        let expected = Double(ids) / Double(n + 1)
        #expect(abs(Double(moved) - expected) <= expected * 0.10, "moved \(moved), expected \(Int(expected)) ±10%")
    }

    @Test func loadIsBalanced() {
        let shards = (0..<8).map { "s\($0)" }
        var counts = [Int](repeating: 0, count: 8)
        for i in 0..<80_000 { counts[Placement.owner(ofID: "k\(i)", among: shards)] += 1 }
        for c in counts { #expect(abs(c - 10_000) < 500, "\(counts)") }
    }

    @Test func perShardK() {
        #expect(Placement.perShardK(k: 10, exact: true, oversample: 3, maxK: 10_000) == 10)
        #expect(Placement.perShardK(k: 10, exact: false, oversample: 1.5, maxK: 10_000) == 15)
        #expect(Placement.perShardK(k: 10, exact: false, oversample: 0.5, maxK: 10_000) == 10)
        #expect(Placement.perShardK(k: 9_000, exact: false, oversample: 2, maxK: 10_000) == 10_000)
    }
}

@Suite struct TopologyTests {
    static let twoGroups = Topology(version: 3, groups: [
        ShardGroup(name: "main", shards: [ShardDescriptor(name: "s0", replicas: ["127.0.0.1:7000", "127.0.0.1:7001"]),
                                          ShardDescriptor(name: "s1", replicas: ["127.0.0.1:7002", "127.0.0.1:7003"])]),
        ShardGroup(name: "books", shards: [ShardDescriptor(name: "b0", replicas: ["127.0.0.1:7100", "127.0.0.1:7101"])]),
    ], collections: ["products": CollectionRouting(shardKey: "category", groups: ["books": "books", "comics": "books"], defaultGroup: "main")])

    @Test func validTopologyPasses() throws {
        try Self.twoGroups.validate()
    }

    @Test func everyInvalidShapeIsNamed() {
        var t = Self.twoGroups
        t.groups = []
        #expect(throws: TopologyError.noGroups) { try t.validate() }
        t = Self.twoGroups
        t.groups[1].shards = []
        #expect(throws: TopologyError.emptyGroup("books")) { try t.validate() }
        t = Self.twoGroups
        t.groups[1].name = "main"
        #expect(throws: TopologyError.duplicateGroup("main")) { try t.validate() }
        t = Self.twoGroups
        t.groups[1].shards[0].name = "s0"
        #expect(throws: TopologyError.duplicateShard("s0")) { try t.validate() }
        t = Self.twoGroups
        t.groups[1].shards[0].replicas[0] = "127.0.0.1:7000"
        #expect(throws: TopologyError.duplicateAddress("127.0.0.1:7000", shards: ["s0", "b0"])) { try t.validate() }
        t = Self.twoGroups
        t.groups[0].shards[1].replicas = ["localhost"]
        #expect(throws: TopologyError.invalidAddress(shard: "s1", address: "localhost")) { try t.validate() }
        t = Self.twoGroups
        t.collections["products"]!.groups["music"] = "media"
        #expect(throws: TopologyError.unknownGroup(collection: "products", group: "media")) { try t.validate() }
        #expect(TopologyError.unknownGroup(collection: "products", group: "media").description.contains("'media'"))
    }

    @Test func replacementNeedsAHigherVersionAndKeepsShardsThatHoldData() throws {
        var next = Self.twoGroups
        next.version = 4
        next.groups[0].shards.append(ShardDescriptor(name: "s2", replicas: ["127.0.0.1:7004", "127.0.0.1:7005"]))
        try Self.twoGroups.validateReplacement(by: next, pointCounts: [:])
        var stale = next
        stale.version = 3
        #expect(throws: TopologyError.staleVersion(current: 3, proposed: 3)) { try Self.twoGroups.validateReplacement(by: stale, pointCounts: [:]) }
        var shrunk = Self.twoGroups
        shrunk.version = 5
        shrunk.groups[0].shards.removeLast()
        #expect(throws: TopologyError.removedShardHoldsData(shard: "s1", points: 12)) {
            try Self.twoGroups.validateReplacement(by: shrunk, pointCounts: ["s1": 12])
        }
        try Self.twoGroups.validateReplacement(by: shrunk, pointCounts: ["s1": 0]) // empty shards may go
    }

    @Test func routingByShardKey() throws {
        let table = try RoutingTable(Self.twoGroups)
        #expect(table.target(collection: "products", id: "x", shardKeyValue: "books").group == "books")
        #expect(table.target(collection: "products", id: "x", shardKeyValue: "comics").shard == "b0")
        #expect(table.target(collection: "products", id: "x", shardKeyValue: "garden").group == "main") // no group: default
        #expect(table.target(collection: "products", id: "x", shardKeyValue: nil).group == "main")
        #expect(table.target(collection: "other", id: "x", shardKeyValue: "books").group == "main")    // no routing entry
        // Search routing: pinned values reach only their groups; otherwise every group.
        #expect(table.groupsToSearch(collection: "products", pinnedValues: ["books"]).map { table.groups[$0].name } == ["books"])
        #expect(table.groupsToSearch(collection: "products", pinnedValues: ["books", "garden"]).map { table.groups[$0].name } == ["main", "books"])
        #expect(table.groupsToSearch(collection: "products", pinnedValues: nil).map { table.groups[$0].name } == ["main", "books"])
        #expect(table.groupsToSearch(collection: "other", pinnedValues: ["books"]).map { table.groups[$0].name } == ["main"])
        // The same id always lands on the same shard of a group.
        let a = table.target(collection: "products", id: "id-42", shardKeyValue: nil)
        #expect(table.target(collection: "products", id: "id-42", shardKeyValue: "garden") == a)
    }
}
