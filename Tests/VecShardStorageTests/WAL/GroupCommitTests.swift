import Testing
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

@Suite("Group commit state machine")
struct GroupCommitTests {
    typealias Machine = GroupCommit<String>
    func pending(_ w: String, bytes: Int = 10) -> Machine.Pending {
        .init(payload: [UInt8](repeating: 0, count: bytes), payloadHash: 0, operation: .delete([w]), waiter: w)
    }

    @Test func firstWriterFlushesOthersJoinTheNextGroup() {
        var m = Machine(nextLSN: 1)
        guard case let .flush(g1) = m.submit(pending("a")) else { Issue.record("expected flush"); return }
        #expect(g1.firstLSN == 1 && g1.entries.map(\.waiter) == ["a"])
        guard case .wait = m.submit(pending("b")), case .wait = m.submit(pending("c")) else { Issue.record("expected wait"); return }
        let after = m.flushFinished(g1, .durable)
        #expect(after.answered == ["a"] && after.error == nil)
        #expect(after.next?.entries.map(\.waiter) == ["b", "c"])
        #expect(after.next?.firstLSN == 2)
        let done = m.flushFinished(after.next!, .durable)
        #expect(done.answered == ["b", "c"] && done.next == nil)
        #expect(!m.isFlushing && m.nextLSN == 4)
    }

    @Test func refusedGroupGivesBackItsLSNsAndTheLogStaysUsable() {
        var m = Machine(nextLSN: 10)
        guard case let .flush(g) = m.submit(pending("a")) else { Issue.record("expected flush"); return }
        _ = m.submit(pending("b"))
        let after = m.flushFinished(g, .refused(.diskFull(path: "wal")))
        #expect(after.answered == ["a"] && after.error == .diskFull(path: "wal"))
        #expect(after.next?.firstLSN == 10, "b takes the LSN a gave back")
    }

    @Test func fsyncFailureFailsQueuedAndLaterWriters() {
        var m = Machine(nextLSN: 1)
        guard case let .flush(g) = m.submit(pending("a")) else { Issue.record("expected flush"); return }
        _ = m.submit(pending("b"))
        let after = m.flushFinished(g, .failed(.unavailable("fsync")))
        #expect(after.answered == ["a", "b"] && after.next == nil)
        guard case .reject(.unavailable) = m.submit(pending("c")) else { Issue.record("expected reject"); return }
    }

    @Test func groupsAreCappedInBytesButTakeAtLeastOneRecord() {
        var m = Machine(nextLSN: 1, maxGroupBytes: 25)
        guard case let .flush(g) = m.submit(pending("big", bytes: 100)) else { Issue.record("expected flush"); return }
        for w in ["a", "b", "c"] { _ = m.submit(pending(w)) }
        let after = m.flushFinished(g, .durable)
        #expect(after.next?.entries.map(\.waiter) == ["a", "b"])
    }

    @Test func closedLogRejects() {
        var m = Machine(nextLSN: 1)
        let idle = m.close()
        #expect(idle)
        guard case .reject(.unavailable) = m.submit(pending("a")) else { Issue.record("expected reject"); return }
    }
}
