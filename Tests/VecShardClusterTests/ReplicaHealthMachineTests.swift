import Testing
@testable import VecShardCluster
import VecShardSchema

/// `ReplicaHealth` on its own: events in, actions out, no sockets, no clients, no clock but the
/// instants the tests pass.
@Suite struct ReplicaHealthMachineTests {
    let t0 = ContinuousClock.now
    func serving(_ points: UInt64 = 10) -> ReplicaHealth.Report { .init(state: "serving", points: points) }
    func awaiting(_ points: UInt64 = 10) -> ReplicaHealth.Report { .init(state: "awaiting_sync", points: points) }

    @Test func aFaultMakesASuspectUntilTheSuspicionEndsOrACallSucceeds() {
        var h = ReplicaHealth(count: 2, writeQuorum: nil, suspicion: .seconds(2))
        h.callFailed(1, kind: .unavailable, code: "unavailable", now: t0)
        #expect(h.suspected(at: t0 + .seconds(1)) == [1])
        #expect(h.suspected(at: t0 + .seconds(3)) == [])
        #expect(h.displayState(1, at: t0) == "suspect")
        #expect(h.writeBlocked(at: t0)?.down == [1], "quorum all: one suspect blocks writes")
        h.callSucceeded(1)
        #expect(h.suspected(at: t0) == [])
        #expect(h.writeBlocked(at: t0) == nil)
    }

    @Test func callerFaultsAndCancellationsSuspectNobody() {
        var h = ReplicaHealth(count: 2, writeQuorum: nil, suspicion: .seconds(2))
        h.callFailed(0, kind: .invalidArgument, code: "dimension_mismatch", now: t0)
        h.callFailed(0, kind: .notFound, code: "collection_not_found", now: t0)
        h.callFailed(1, kind: .cancelled, code: "cancelled", now: t0)
        #expect(h.suspected(at: t0) == [])
        #expect(h.readable() == [0, 1])
    }

    @Test func aCatchingUpReplicaGetsNoReadsUntilItReportsServing() {
        var h = ReplicaHealth(count: 2, writeQuorum: nil, suspicion: .seconds(2))
        h.callFailed(0, kind: .unavailable, code: "replica_catching_up", now: t0)
        #expect(h.suspected(at: t0) == [], "alive: not a suspect")
        #expect(h.readable() == [1])
        #expect(h.displayState(0, at: t0) == "catching_up")
        #expect(h.healthChecked([serving(), serving()], now: t0) == [])
        #expect(h.readable() == [0, 1])
    }

    @Test func aReplicaThatMissedAWriteIsSyncedFromACleanPeerAtTheNextCheck() {
        var h = ReplicaHealth(count: 3, writeQuorum: 2, suspicion: .seconds(2))
        h.writeFinished(applied: [true, false, true], failed: [1: .deadlineExceeded])
        #expect(h.replicas[1].needsSync)
        let actions = h.healthChecked([serving(), serving(), serving()], now: t0)
        #expect(actions == [.sync(replica: 1, peers: [0, 2], force: true)])
        #expect(h.replicas[1].syncing && h.replicas[1].catchingUp && !h.replicas[1].needsSync)
        #expect(h.readable() == [0, 2])
        #expect(h.healthChecked([serving(), serving(), serving()], now: t0) == [], "one sync at a time")
        h.syncFinished(1, succeeded: true, force: true)
        #expect(h.readable() == [0, 1, 2])
        #expect(h.displayState(1, at: t0) == "serving")
    }

    @Test func aFailedSyncLeavesTheMissedWritesMissed() {
        var h = ReplicaHealth(count: 2, writeQuorum: nil, suspicion: .seconds(2))
        h.writeFinished(applied: [true, false], failed: [1: .unavailable])
        #expect(h.healthChecked([serving(), serving()], now: t0) == [.sync(replica: 1, peers: [0], force: true)])
        h.syncFinished(1, succeeded: false, force: true)
        #expect(h.replicas[1].needsSync && !h.replicas[1].syncing)
        #expect(h.healthChecked([serving(), serving()], now: t0) == [.sync(replica: 1, peers: [0], force: true)], "tried again")
    }

    @Test func aWriteNobodyAppliedOrThatWasCancelledDivergesNobody() {
        var h = ReplicaHealth(count: 2, writeQuorum: nil, suspicion: .seconds(2))
        h.writeFinished(applied: [false, false], failed: [0: .invalidArgument, 1: .invalidArgument])
        h.writeFinished(applied: [true, false], failed: [1: .cancelled])
        #expect(!h.replicas[0].needsSync && !h.replicas[1].needsSync)
    }

    @Test func aRestartedReplicaSyncsFromItsServingPeerAndAnUnansweredOneIsSuspected() {
        var h = ReplicaHealth(count: 3, writeQuorum: nil, suspicion: .seconds(2))
        let actions = h.healthChecked([serving(), awaiting(), nil], now: t0)
        #expect(actions == [.sync(replica: 1, peers: [0], force: false)])
        #expect(h.suspected(at: t0) == [2])
    }

    @Test func theOnlyServingPeerIsASourceEvenIfItMissedAWrite() {
        var h = ReplicaHealth(count: 2, writeQuorum: nil, suspicion: .seconds(2))
        h.writeFinished(applied: [false, true], failed: [0: .unavailable])
        let actions = h.healthChecked([serving(), awaiting()], now: t0)
        #expect(actions == [.syncFromDivergedPeer(replica: 1), .sync(replica: 1, peers: [0], force: false)])
    }

    @Test func whenTheWholeShardRestartsWithQuorumAllTheFirstCleanReplicaIsTheSource() {
        var h = ReplicaHealth(count: 2, writeQuorum: nil, suspicion: .seconds(2))
        h.writeFinished(applied: [false, true], failed: [0: .unavailable])
        #expect(h.healthChecked([awaiting(), awaiting()], now: t0) == [.sync(replica: 1, peers: [], force: false)])
        h.syncFinished(1, succeeded: true, force: false)
        #expect(h.healthChecked([awaiting(), serving()], now: t0) == [.sync(replica: 0, peers: [1], force: true)])
    }

    @Test func withASmallerQuorumTheSourceIsChosenOnlyOnceAllAnswerAndHoldsTheMostPoints() {
        var h = ReplicaHealth(count: 3, writeQuorum: 2, suspicion: .seconds(2))
        #expect(h.healthChecked([awaiting(5), awaiting(9), nil], now: t0) == [], "one did not answer: it may hold more")
        #expect(h.healthChecked([awaiting(5), awaiting(9), awaiting(7)], now: t0) == [.sync(replica: 1, peers: [], force: false)])
    }
}
