import Foundation
import Testing
import VecShardEngine
import VecShardRouting
import VecShardSchema
import VecShardShard
import VecShardShardAPI
import VecShardStorage

/// The copy step of a rebalance (docs/ARCHITECTURE.md, "Design, not built yet: online
/// rebalancing"): the changes a placement selector picks, applied on their new owner with their
/// versions; a write that reached the new owner meanwhile (dual writes) is never undone by it.
@Suite struct CopyBySelectorTests {
    @Test func theIDsANewShardOwnsAreCopiedWithTheirVersionsAndLiveWritesWin() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-copy-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let old = LocalShard(name: "s0", storage: try await Shard.open(directory: root + "/s0"))
        let new = LocalShard(name: "s1", storage: try await Shard.open(directory: root + "/s1"))
        let schema = CollectionSchema(name: "c", dimension: 2, metric: .l2, index: IndexSpec(kind: .flat))
        for s in [old, new] { _ = try await s.createCollection(schema) }
        _ = try await old.upsert(collection: "c", points: (0..<200).map { Point(id: "p\($0)", vector: [Float($0), 1]) }, version: nil)
        _ = try await old.delete(collection: "c", ids: ["p1", "p2", "p3"], version: nil)
        let layout = ["s0", "s1"]
        let moving = Set((0..<200).map { "p\($0)" }.filter { layout[Placement.owner(ofID: $0, among: layout)] == "s1" })
        #expect(!moving.isEmpty && moving.count < 200)
        // A dual write reached the new owner first: a newer value of one moving id.
        let live = moving.subtracting(["p1", "p2", "p3"]).sorted()[0]
        let dual = try await new.upsert(collection: "c", points: [Point(id: live, vector: [-1, -1])], version: nil)
        // The copy, page by page.
        var query = ChangesQuery(collection: "c", afterVersion: 0, limit: 17, ignoringFloor: true, selector: PlacementSelector(shards: layout, owner: "s1"))
        var copied = 0
        while true {
            let page = try await old.changes(query)
            #expect(page.changes.points.allSatisfy { moving.contains($0.id) })
            #expect(page.changes.deletedIDs.allSatisfy { layout[Placement.owner(ofID: $0, among: layout)] == "s1" })
            copied += page.changes.count
            _ = try await new.apply(collection: "c", changes: page.changes)
            guard page.more else { break }
            (query.afterVersion, query.afterID) = (page.nextVersion, page.nextID)
        }
        #expect(copied >= moving.subtracting(["p1", "p2", "p3"]).count)
        let here = try await new.get(collection: "c", ids: moving.sorted(), includeVector: true)
        #expect(Set(here.map(\.id)) == moving.subtracting(["p1", "p2", "p3"]))
        #expect(here.first { $0.id == live }?.vector == [-1, -1], "the live write is newer than the copied value")
        let source = try old.storage.collection("c"), target = try new.storage.collection("c")
        for id in moving.subtracting(["p1", "p2", "p3", live]) { #expect(target.version(of: id)?.version == source.version(of: id)?.version) }
        #expect(target.version(of: live)?.version == dual.version)
        // Bad input: a page whose lists do not pair up is refused, naming the problem.
        await #expect(throws: ShardCallError.self) {
            _ = try await new.apply(collection: "c", changes: VersionedChanges(deletedIDs: [""], deletedVersions: [1]))
        }
        await old.storage.close()
        await new.storage.close()
    }
}
