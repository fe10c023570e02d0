import Testing
@testable import VecShardCluster
import VecShardSchema

/// `ReplicaHealth` on its own: events in, actions out, no sockets, no clients, no clock but the
/// instants the tests pass.
@Suite struct ReplicaHealthMachineTests {
    let t0 = ContinuousClock.now
    func serving(_ points: UInt64 = 10, version: UInt64 = 0) -> ReplicaHealth.Report { .init(state: "serving", points: points, version: version) }
    func awaiting(_ points: UInt64 = 10, version: UInt64 = 0) -> ReplicaHealth.Report { .init(state: "awaiting_sync", points: points, version: version) }

    @Test func aFaultMakesASuspectUntilTheSuspicionEndsOrACallSucceeds() {
        var h = ReplicaHealth(count: 2, minInSync: nil, suspicion: .seconds(2))
        h.callFailed(1, kind: .unavailable, code: "unavailable", now: t0)
        #expect(h.suspected(at: t0 + .seconds(1)) == [1])
        #expect(h.suspected(at: t0 + .seconds(3)) == [])
        #expect(h.displayState(1, at: t0) == "suspect")
        #expect(h.writeBlocked(at: t0)?.down == [1], "min in sync all: one suspect blocks writes")
        h.callSucceeded(1)
        #expect(h.suspected(at: t0) == [])
        #expect(h.writeBlocked(at: t0) == nil)
    }

    @Test func withOneInSyncReplicaRequiredASuspectDoesNotBlockWrites() {
        var h = ReplicaHealth(count: 2, minInSync: 1, suspicion: .seconds(2))
        h.callFailed(1, kind: .unavailable, code: "unavailable", now: t0)
        #expect(h.writeBlocked(at: t0) == nil)
        #expect(h.acknowledgers(at: t0) == [0])
        h.callFailed(0, kind: .deadlineExceeded, code: "deadline_exceeded", now: t0)
        #expect(h.writeBlocked(at: t0)?.live == 0, "no in-sync replica answers: refused")
    }

    @Test func callerFaultsAndCancellationsSuspectNobody() {
        var h = ReplicaHealth(count: 2, minInSync: nil, suspicion: .seconds(2))
        h.callFailed(0, kind: .invalidArgument, code: "dimension_mismatch", now: t0)
        h.callFailed(0, kind: .notFound, code: "collection_not_found", now: t0)
        h.callFailed(1, kind: .cancelled, code: "cancelled", now: t0)
        #expect(h.suspected(at: t0) == [])
        #expect(h.readable() == [0, 1])
    }

    @Test func aCatchingUpReplicaGetsNoReadsUntilItReportsServing() {
        var h = ReplicaHealth(count: 2, minInSync: nil, suspicion: .seconds(2))
        h.callFailed(0, kind: .unavailable, code: "replica_catching_up", now: t0)
        #expect(h.suspected(at: t0) == [], "alive: not a suspect")
        #expect(h.readable() == [1])
        #expect(h.displayState(0, at: t0) == "catching_up")
        #expect(h.healthChecked([serving(), serving()], now: t0) == [])
        #expect(h.readable() == [0, 1])
    }

    @Test func aReplicaThatMissedAWriteLeavesTheSetAndCatchesUpAfterTheVersionBelowIt() {
        var h = ReplicaHealth(count: 3, minInSync: 2, suspicion: .seconds(2))
        h.writeFinished(version: 500, applied: [true, false, true], failed: [1: .deadlineExceeded])
        h.writeFinished(version: 700, applied: [true, false, true], failed: [1: .deadlineExceeded])
        #expect(h.replicas[1].needsSync && h.replicas[1].missedAfter == 499)
        #expect(h.displayState(1, at: t0) == "out_of_sync")
        #expect(h.readable() == [0, 2], "out of the in-sync set: no reads")
        #expect(h.acknowledgers(at: t0) == [0, 2])
        let actions = h.healthChecked([serving(), serving(), serving()], now: t0)
        #expect(actions == [.sync(replica: 1, peers: [0, 2], force: true, after: 499)])
        #expect(h.replicas[1].syncing && h.replicas[1].catchingUp && !h.replicas[1].needsSync)
        #expect(h.healthChecked([serving(), serving(), serving()], now: t0) == [], "one sync at a time")
        h.syncFinished(1, succeeded: true, force: true, after: 499)
        #expect(h.readable() == [0, 1, 2])
        #expect(h.displayState(1, at: t0) == "serving")
    }

    @Test func aSkippedSuspectMissesTheWrite() {
        var h = ReplicaHealth(count: 2, minInSync: 1, suspicion: .seconds(2))
        h.writeFinished(version: 90, applied: [true, false], failed: [:], skipped: [1])
        #expect(h.replicas[1].needsSync && h.replicas[1].missedAfter == 89)
    }

    @Test func aFailedSyncLeavesTheMissedWritesMissedFromTheLowestPoint() {
        var h = ReplicaHealth(count: 2, minInSync: nil, suspicion: .seconds(2))
        h.writeFinished(version: 100, applied: [true, false], failed: [1: .unavailable])
        #expect(h.healthChecked([serving(), serving()], now: t0) == [.sync(replica: 1, peers: [0], force: true, after: 99)])
        h.writeFinished(version: 300, applied: [true, false], failed: [1: .unavailable])
        h.syncFinished(1, succeeded: false, force: true, after: 99)
        #expect(h.replicas[1].needsSync && !h.replicas[1].syncing && h.replicas[1].missedAfter == 99)
        #expect(h.healthChecked([serving(), serving()], now: t0) == [.sync(replica: 1, peers: [0], force: true, after: 99)], "tried again")
    }

    @Test func aWriteNobodyAppliedDivergesNobodyAndACancelledOneMayHaveApplied() {
        var h = ReplicaHealth(count: 2, minInSync: nil, suspicion: .seconds(2))
        h.writeFinished(version: 5, applied: [false, false], failed: [0: .invalidArgument, 1: .invalidArgument])
        #expect(!h.replicas[0].needsSync && !h.replicas[1].needsSync)
        h.writeFinished(version: 6, applied: [true, false], failed: [1: .cancelled])
        #expect(h.replicas[1].needsSync && h.replicas[1].missedAfter == 5)
    }

    @Test func aRestartedReplicaSyncsFromItsServingPeerAndAnUnansweredOneIsSuspected() {
        var h = ReplicaHealth(count: 3, minInSync: nil, suspicion: .seconds(2))
        let actions = h.healthChecked([serving(), awaiting(), nil], now: t0)
        #expect(actions == [.sync(replica: 1, peers: [0], force: false, after: nil)])
        #expect(h.suspected(at: t0) == [2])
    }

    @Test func theOnlyServingPeerIsASourceEvenIfItMissedAWrite() {
        var h = ReplicaHealth(count: 2, minInSync: nil, suspicion: .seconds(2))
        h.writeFinished(version: 9, applied: [false, true], failed: [0: .unavailable])
        let actions = h.healthChecked([serving(), awaiting()], now: t0)
        #expect(actions == [.syncFromDivergedPeer(replica: 1), .sync(replica: 1, peers: [0], force: false, after: nil)])
    }

    @Test func whenTheWholeShardRestartsWithAllInSyncTheFirstCleanReplicaIsTheSource() {
        var h = ReplicaHealth(count: 2, minInSync: nil, suspicion: .seconds(2))
        h.writeFinished(version: 9, applied: [false, true], failed: [0: .unavailable])
        #expect(h.healthChecked([awaiting(), awaiting()], now: t0) == [.sync(replica: 1, peers: [], force: false, after: nil)])
        h.syncFinished(1, succeeded: true, force: false)
        #expect(h.healthChecked([awaiting(), serving()], now: t0) == [.sync(replica: 0, peers: [1], force: true, after: 8)])
    }

    @Test func withFewerInSyncRequiredTheSourceIsChosenOnlyOnceAllAnswerAndHoldsTheHighestVersion() {
        var h = ReplicaHealth(count: 3, minInSync: 1, suspicion: .seconds(2))
        #expect(h.healthChecked([awaiting(5, version: 50), awaiting(9, version: 40), nil], now: t0) == [], "one did not answer: it may hold more")
        #expect(h.healthChecked([awaiting(5, version: 50), awaiting(9, version: 40), awaiting(7, version: 45)], now: t0)
                == [.sync(replica: 0, peers: [], force: false, after: nil)])
        #expect(h.acknowledgers(at: t0) == [0, 1, 2], "nobody in sync (all restarted): every answering replica acknowledges")
    }

    @Test func replicasThatDifferAtTheSameVersionTwiceInARowAreReconciled() {
        var h = ReplicaHealth(count: 2, minInSync: 1, suspicion: .seconds(2))
        let a = ReplicaHealth.Report(state: "serving", points: 10, version: 90, checksum: 1)
        let b = ReplicaHealth.Report(state: "serving", points: 11, version: 90, checksum: 2)
        #expect(h.healthChecked([a, b], now: t0) == [], "once could be writes in flight")
        #expect(h.healthChecked([a, b], now: t0) == [.diverged(replica: 0, peer: 1), .sync(replica: 0, peers: [1], force: true, after: 0)])
        h.syncFinished(0, succeeded: true, force: true, after: 0)
        let moved = ReplicaHealth.Report(state: "serving", points: 11, version: 95, checksum: 2)
        #expect(h.healthChecked([a, moved], now: t0) == [], "different versions: not a divergence")
        #expect(h.healthChecked([b, b], now: t0) == [])
    }

    @Test func replicasThatStayApartAtQuietTimesTakeTurnsCopyingEachOther() {
        var h = ReplicaHealth(count: 2, minInSync: 1, suspicion: .seconds(2))
        // A router died after one replica made its write durable: versions differ and stay so.
        let a = ReplicaHealth.Report(state: "serving", points: 10, version: 90, checksum: 1)
        let b = ReplicaHealth.Report(state: "serving", points: 11, version: 95, checksum: 2)
        #expect(h.healthChecked([a, b], now: t0) == [])
        #expect(h.healthChecked([a, b], now: t0) == [.diverged(replica: 0, peer: 1), .sync(replica: 0, peers: [1], force: true, after: 0)])
        h.syncFinished(0, succeeded: true, force: true, after: 0)
        // 0 now holds the union, 1 still lacks what only 0 had: the other way round next.
        let union = ReplicaHealth.Report(state: "serving", points: 12, version: 95, checksum: 3)
        #expect(h.healthChecked([union, b], now: t0) == [])
        #expect(h.healthChecked([union, b], now: t0) == [.diverged(replica: 1, peer: 0), .sync(replica: 1, peers: [0], force: true, after: 0)])
    }

    @Test func aReplicaThatKnowsItMissedWritesIsNotASource() {
        var h = ReplicaHealth(count: 2, minInSync: 1, suspicion: .seconds(2))
        let pending = ReplicaHealth.Report(state: "awaiting_sync", points: 20, version: 99, pending: true)
        let other = ReplicaHealth.Report(state: "awaiting_sync", points: 5, version: 50)
        #expect(h.healthChecked([pending, other], now: t0) == [.sync(replica: 1, peers: [], force: false, after: nil)])
    }

    @Test func aMissedCreateDoesNotHideTheVersionOfALaterMissedWrite() {
        var h = ReplicaHealth(count: 2, minInSync: 1, suspicion: .seconds(2))
        h.writeFinished(version: nil, applied: [true, false], failed: [1: .unavailable])
        h.writeFinished(version: 70, applied: [true, false], failed: [1: .unavailable])
        #expect(h.replicas[1].needsSync && h.replicas[1].missedAfter == 69)
    }
}
