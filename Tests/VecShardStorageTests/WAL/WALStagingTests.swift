#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Testing
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

/// The WAL's apply protocol (`WALApplier`): a group is staged while it is written, then
/// published (durable) or abandoned (refused), in LSN order, and a writer is answered only
/// after its group was published.
@Suite("WAL staging and publish order")
struct WALStagingTests {
    /// Records every step with the LSNs it saw; `answered` is filled by the writers.
    final class Recorder: WALApplier, @unchecked Sendable {
        let events = Locked<[String]>([])
        let stageDelay: useconds_t
        /// When set, the first publish waits (up to 5 s) until this returns true.
        let firstPublishWaitsFor: (@Sendable () -> Bool)?
        let publishEntered = Locked(false)
        init(stageDelay: useconds_t = 0, firstPublishWaitsFor: (@Sendable () -> Bool)? = nil) {
            self.stageDelay = stageDelay
            self.firstPublishWaitsFor = firstPublishWaitsFor
        }
        func stage(_ records: [WALRecord]) -> [UInt64] {
            if stageDelay > 0 { usleep(stageDelay) }
            let lsns = records.map(\.lsn)
            events.withLock { $0.append("stage \(lsns)") }
            return lsns
        }
        func publish(_ records: [WALRecord], staged: [UInt64]) -> [Int] {
            #expect(staged == records.map(\.lsn), "publish gets what stage returned for the same group")
            let first = !publishEntered.withLock { entered in defer { entered = true }; return entered }
            if first, let condition = firstPublishWaitsFor {
                var waited = 0
                while !condition() && waited < 5_000 {
                    usleep(1000)
                    waited += 1
                }
                events.withLock { $0.append(condition() ? "next group written during publish" : "publish waited in vain") }
            }
            events.withLock { $0.append("publish \(staged)") }
            return records.map { _ in 1 }
        }
        func abandon(_ records: [WALRecord], staged: [UInt64]) {
            events.withLock { $0.append("abandon \(staged)") }
        }
    }

    func open(_ dir: TemporaryDirectory, _ recorder: Recorder) throws -> WriteAheadLog {
        try WriteAheadLog(directory: dir.path, existingFiles: [], nextLSN: 1, fileBytesLimit: 1 << 20, applier: recorder)
    }

    @Test func groupsAreStagedThenPublishedInLSNOrderBeforeWritersAreAnswered() async throws {
        let dir = TemporaryDirectory("wal-staging")
        // A slow stage: publish must still wait for it (and the write) before answering.
        let recorder = Recorder(stageDelay: 2000)
        let wal = try open(dir, recorder)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<8 {
                group.addTask {
                    for i in 0..<10 {
                        let (lsn, applied) = try await wal.append(.delete(["w\(w)-\(i)"]))
                        #expect(applied == 1)
                        let events = recorder.events.withLock { $0 }
                        #expect(events.contains { $0.hasPrefix("publish") && $0.contains("\(lsn)") },
                                "LSN \(lsn) answered before it was published")
                    }
                }
            }
            try await group.waitForAll()
        }
        wal.close()
        let events = recorder.events.withLock { $0 }
        // Events alternate stage, publish for the same group; LSNs increase by 1 throughout.
        var expected: UInt64 = 1
        #expect(events.count % 2 == 0)
        for pair in stride(from: 0, to: events.count, by: 2) {
            #expect(events[pair].hasPrefix("stage ") && events[pair + 1].hasPrefix("publish "))
            #expect(events[pair].dropFirst(6) == events[pair + 1].dropFirst(8))
            let lsns = events[pair].dropFirst(7).dropLast().split(separator: ",").map { UInt64($0.trimmingCharacters(in: .whitespaces))! }
            #expect(lsns == Array(expected..<(expected + UInt64(lsns.count))))
            expected += UInt64(lsns.count)
        }
        #expect(expected == 81)
    }

    @Test func refusedGroupIsStagedThenAbandonedAndItsWriterGetsTheError() async throws {
        let dir = TemporaryDirectory("wal-staging")
        let recorder = Recorder()
        let wal = try open(dir, recorder)
        _ = try await wal.append(.delete(["a"]))
        wal.injectedWriteError = { @Sendable _ in ENOSPC }
        await #expect(throws: StorageError.self) { _ = try await wal.append(.delete(["b"])) }
        wal.injectedWriteError = nil
        let (lsn, _) = try await wal.append(.delete(["c"]))
        #expect(lsn == 2, "the refused group gave its LSN back")
        wal.close()
        #expect(recorder.events.withLock { $0 } == ["stage [1]", "publish [1]", "stage [2]", "abandon [2]", "stage [2]", "publish [2]"])
    }

    @Test func nextGroupIsWrittenWhileThePreviousIsPublished() async throws {
        let dir = TemporaryDirectory("wal-pipeline")
        let walBox = Locked<WriteAheadLog?>(nil)
        // The first publish holds until a second group's bytes reached the file.
        let recorder = Recorder(firstPublishWaitsFor: {
            guard let wal = walBox.withLock({ $0 }) else { return false }
            let oneRecord = WALRecordCodec.headerBytes + WALRecordCodec.encodePayload(.delete(["a"])).count
            return wal.appendedBytes.withLock { $0 } > oneRecord
        })
        let wal = try open(dir, recorder)
        walBox.withLock { $0 = wal }
        async let first = wal.append(.delete(["a"]))
        while !recorder.publishEntered.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(1)) }
        let (secondLSN, _) = try await wal.append(.delete(["b"]))
        let (firstLSN, _) = try await first
        wal.close()
        #expect((firstLSN, secondLSN) == (1, 2))
        // Group 2 is staged only after group 1 is published (one applier, in LSN order).
        #expect(recorder.events.withLock { $0 } == ["stage [1]", "next group written during publish", "publish [1]", "stage [2]", "publish [2]"])
    }

    @Test func payloadBuffersAreRecycledWithoutACopy() async throws {
        let dir = TemporaryDirectory("wal-buffers")
        let wal = try open(dir, Recorder())
        let big = WALOperation.delete((0..<20_000).map { "point-\($0)" })
        let size = WALRecordCodec.payloadCapacity(big)
        _ = try await wal.append(big)
        wal.close()
        // The written payload's buffer went back to the pool, owned by nobody else: encoding
        // into it again keeps its memory (a shared buffer would be copied first).
        var recycled: [UInt8]?
        while recycled == nil {
            let b = PayloadBuffers.shared.take()
            if b.capacity == 0 { break }
            if b.capacity >= size { recycled = b }
        }
        guard var buffer = recycled.take() else {
            Issue.record("no buffer of \(size) bytes came back to the pool")
            return
        }
        buffer.append(1) // writes in place only when unique
        let address = buffer.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        let encoded = WALRecordCodec.encodePayload(big, reusing: consume buffer)
        #expect(encoded.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } == address)
        #expect(encoded == WALRecordCodec.encodePayload(big))
    }
}
