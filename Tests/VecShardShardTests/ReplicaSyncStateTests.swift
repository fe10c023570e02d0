import Testing
@testable import VecShardShard
import VecShardShardAPI

/// The replica's side of catch-up without storage, peers or tasks.
@Suite struct ReplicaSyncStateTests {
    @Test func aServingReplicaIsUpToDateUnlessForced() {
        var s = ReplicaSyncState(awaitingSync: false)
        #expect(s.readsAllowed)
        #expect(s.syncRequested(force: false, afterVersion: 10) == .upToDate)
        #expect(s.state == .serving && s.pendingAfter == nil)
        #expect(s.syncRequested(force: true, afterVersion: 10) == .start(after: 10, margin: false, wasServing: true, persist: true))
        #expect(s.state == .syncing && !s.readsAllowed && s.pendingAfter == 10)
        s.syncFinished(succeeded: true, wasServing: true)
        #expect(s.state == .serving && s.pendingAfter == nil)
    }

    @Test func aRestartedReplicaGoesBackTheMarginOnlyWithoutAPointAndKeepsTheLowestPoint() {
        var s = ReplicaSyncState(awaitingSync: true)
        #expect(!s.readsAllowed)
        s.createdCollection("new")
        #expect(s.syncRequested(force: false, afterVersion: nil) == .start(after: nil, margin: true, wasServing: false, persist: false))
        s.syncFinished(succeeded: false, wasServing: false)
        #expect(s.state == .awaitingSync, "a failed catch-up waits again")
        #expect(s.syncRequested(force: false, afterVersion: 50) == .start(after: 50, margin: false, wasServing: false, persist: true))
        s.syncFinished(succeeded: false, wasServing: false)
        #expect(s.syncRequested(force: true, afterVersion: 80) == .start(after: 50, margin: false, wasServing: false, persist: false),
                "the lowest point asked for is kept until a catch-up succeeds")
        s.syncFinished(succeeded: true, wasServing: false)
        #expect(s.state == .serving && s.readsAllowed && s.pendingAfter == nil)
    }

    @Test func aPendingCatchUpFromTheLastRunStartsAwaiting() {
        var s = ReplicaSyncState(awaitingSync: false, pendingAfter: 42)
        #expect(s.state == .awaitingSync)
        #expect(s.syncRequested(force: false, afterVersion: nil) == .start(after: 42, margin: false, wasServing: false, persist: false))
    }

    @Test func aFailedForcedCatchUpWithAPointWaitsAndOneWithoutServesAsItWas() {
        var s = ReplicaSyncState(awaitingSync: false)
        _ = s.syncRequested(force: true, afterVersion: 7)
        s.syncFinished(succeeded: false, wasServing: true)
        #expect(s.state == .awaitingSync && !s.readsAllowed && s.pendingAfter == 7, "it knows it lacks the writes after 7")
        var t = ReplicaSyncState(awaitingSync: false)
        _ = t.syncRequested(force: true, afterVersion: nil)
        t.syncFinished(succeeded: false, wasServing: true)
        #expect(t.state == .serving && t.readsAllowed)
    }
}
