import Testing
import VecShardEngine
import VecShardProto
import VecShardSchema
import VecShardShardAPI

/// The seam's conversions at the wire, where a router and a shard of different builds meet.
@Suite struct WireConversionTests {
    @Test func placementSelectorsAndTheRoutersSeenSurviveTheWire() throws {
        let routing = PlacementSelector.Routing(groups: [("main", ["m0", "m1"]), ("solo", ["b0"])], shardKey: "tenant",
                                                valueGroups: ["big": "solo", "x": "main"], defaultGroup: "main")
        for selector in [PlacementSelector(shards: ["s0", "s1"], owner: "s1"), PlacementSelector(shards: ["s0"], owner: "s0", exclude: true),
                         PlacementSelector(shards: [], owner: "m0", exclude: true, routing: routing)] {
            let bytes = ChangesQuery(collection: "c", afterVersion: 5, selector: selector).message.serializedBytes()
            #expect(ChangesQuery(message: try ChangesRequest(serializedBytes: bytes)).selector == selector)
        }
        #expect(PlacementSelector(message: PlacementSelectorMessage()) == nil, "an empty selector picks everything")
        #expect(PlacementSelector(shards: ["s0"], owner: "s0").needsMetadata == false && PlacementSelector(shards: [], owner: "m0", routing: routing).needsMetadata)
        var stats = ShardStats(shardID: "s0")
        stats.routersSeen = ["router-a", "router-b"]
        #expect(ShardStats(message: try StatsResponse(serializedBytes: stats.message.serializedBytes())).routersSeen == ["router-a", "router-b"])
    }

    @Test func anotherIndexTypesKnobsAreDroppedSoWhatIsStoredIsWhatIsDescribed() throws {
        let hnsw = try IndexSpec(message: IndexSpecMessage(type: "hnsw", nlist: 8, pqM: 4, m: 12))
        #expect(hnsw.nlist == nil && hnsw.pqM == nil && hnsw.m == 12)
        #expect(hnsw.message.nlist == 0 && hnsw.message.pqM == 0)
        let ivf = try IndexSpec(message: IndexSpecMessage(type: "ivf_flat", nlist: 8, pqM: 4))
        #expect(ivf.nlist == 8 && ivf.pqM == nil)
        let pq = try IndexSpec(message: IndexSpecMessage(type: "ivf_pq", nlist: 8, pqM: 4))
        #expect(pq.nlist == 8 && pq.pqM == 4)
        #expect(throws: SchemaError.self) { try IndexSpec(message: IndexSpecMessage(type: "lsh")) }
    }

    @Test func aCollectionThisBuildCannotReadIsListedAsRefusedNotAFailedShard() {
        var stats = StatsResponse()
        stats.shardID = "s0"
        var good = CollectionInfoMessage()
        good.name = "good"; good.dimension = 4; good.metric = "l2"; good.count = 3
        var newer = CollectionInfoMessage()
        newer.name = "newer"; newer.dimension = 4; newer.metric = "hamming"
        stats.collections = [good, newer]
        stats.replicaState = "serving"
        let s = ShardStats(message: stats)
        #expect(s.collections.map(\.name) == ["good"] && s.collections[0].count == 3)
        #expect(s.refusedCollections.map(\.name) == ["newer"] && s.refusedCollections[0].code == "unreadable_schema")
        #expect(s.replicaState == .serving)
    }

    @Test func replicaStatesFromOlderAndNewerShards() {
        var stats = StatsResponse()
        #expect(ShardStats(message: stats).replicaState == .serving, "a shard that predates replica repair")
        stats.replicaState = "awaiting_sync"
        #expect(ShardStats(message: stats).replicaState == .awaitingSync)
        stats.replicaState = "some_future_state"
        #expect(ShardStats(message: stats).replicaState == .syncing, "not serving reads, and no sync requested")
    }
}
