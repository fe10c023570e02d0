import Testing
@testable import VecShardShard
import VecShardShardAPI

/// The replica's side of repair without storage, peers or tasks.
@Suite struct ReplicaSyncStateTests {
    @Test func aServingReplicaIsUpToDateUnlessForced() {
        var s = ReplicaSyncState(awaitingSync: false)
        #expect(s.readsAllowed && !s.isTracking)
        #expect(s.syncRequested(force: false) == .upToDate)
        #expect(s.state == .serving)
        s.wrote(collection: "c", ids: ["a"])
        #expect(s.dirtyIDs(in: "c").isEmpty, "not tracking while serving")
        #expect(s.syncRequested(force: true) == .start(settle: true, wasServing: true))
        #expect(s.state == .syncing && !s.readsAllowed && s.isTracking)
    }

    @Test func writesWhileNotServingAreDirtyUntilTheSyncEnds() {
        var s = ReplicaSyncState(awaitingSync: true)
        #expect(!s.readsAllowed && s.isTracking)
        s.wrote(collection: "c", ids: ["a", "b"])
        s.createdCollection("new")
        #expect(s.syncRequested(force: false) == .start(settle: false, wasServing: false))
        s.wrote(collection: "c", ids: ["c"])
        #expect(s.dirtyIDs(in: "c") == ["a", "b", "c"], "tracking began at start and goes on during the sync")
        #expect(s.created == ["new"])
        s.syncFinished(succeeded: true, wasServing: false)
        #expect(s.state == .serving && s.readsAllowed && !s.isTracking && s.created.isEmpty)
    }

    @Test func aFailedSyncOfAWaitingReplicaWaitsAgainAndKeepsTracking() {
        var s = ReplicaSyncState(awaitingSync: true)
        s.wrote(collection: "c", ids: ["a"])
        _ = s.syncRequested(force: false)
        s.syncFinished(succeeded: false, wasServing: false)
        #expect(s.state == .awaitingSync && !s.readsAllowed)
        #expect(s.dirtyIDs(in: "c") == ["a"], "the next sync still skips what was written")
        #expect(s.syncRequested(force: false) == .start(settle: false, wasServing: false))
    }

    @Test func aFailedForcedSyncOfAServingReplicaServesAsItWas() {
        var s = ReplicaSyncState(awaitingSync: false)
        _ = s.syncRequested(force: true)
        s.wrote(collection: "c", ids: ["a"])
        s.syncFinished(succeeded: false, wasServing: true)
        #expect(s.state == .serving && s.readsAllowed && !s.isTracking)
    }
}
