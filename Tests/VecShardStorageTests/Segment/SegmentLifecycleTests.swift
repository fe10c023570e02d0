import Testing
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

@Suite("Segment lifecycle, manifest and checkpoint plans")
struct SegmentLifecycleTests {
    let thresholds = SegmentThresholds(sealRows: 100, sealBytes: 1 << 30, compactDeadFraction: 0.2, smallSegmentFraction: 0.5)

    @Test func sealAtThresholdThenPublishThenCheckpoint() {
        var l = SegmentLifecycle(thresholds: thresholds, manifest: Manifest(), deadCounts: [:])
        #expect(l.growing == 1)
        #expect(l.growingChanged(rows: 99, bytes: 0, lsn: 5).isEmpty)
        let freeze = l.growingChanged(rows: 100, bytes: 0, lsn: 6)
        #expect(freeze == [.freeze(segment: 1, coversLSN: 6, newGrowing: 2)])
        let publish = l.sealFinished(segment: 1, rows: 100, dead: 0)
        guard case let .publish(m) = publish.first else { Issue.record("expected publish"); return }
        #expect(m.version == 1 && m.checkpointLSN == 6 && m.segments == [.init(id: 1, rows: 100, tombstones: nil)])
        #expect(m.nextSegmentID == 3)
        let after = l.manifestPublished(m)
        #expect(after.first == .checkpointWAL(through: 6))
    }

    @Test func tombstoneFilesAreRewrittenOnlyForChangedSegments() {
        var l = SegmentLifecycle(thresholds: thresholds, manifest: Manifest(), deadCounts: [:])
        _ = l.growingChanged(rows: 100, bytes: 0, lsn: 1)
        guard case let .publish(m1) = l.sealFinished(segment: 1, rows: 100, dead: 3).first else { return }
        #expect(m1.segments[0].tombstones == "tombstones-1.bin")
        _ = l.manifestPublished(m1)
        _ = l.growingChanged(rows: 100, bytes: 0, lsn: 2)
        guard case let .publish(m2) = l.sealFinished(segment: 2, rows: 100, dead: 0).first else { return }
        #expect(m2.segments.map(\.tombstones) == ["tombstones-1.bin", nil], "segment 1 unchanged keeps its file")
        _ = l.manifestPublished(m2)
        _ = l.deadRowsChanged(segment: 2, dead: 1)
        _ = l.growingChanged(rows: 100, bytes: 0, lsn: 3)
        guard case let .publish(m3) = l.sealFinished(segment: 3, rows: 100, dead: 0).first else { return }
        #expect(m3.segments.map(\.tombstones) == ["tombstones-1.bin", "tombstones-3.bin", nil])
    }

    @Test func heavilyDeletedSegmentIsCompactedAndRetiredAfterPublish() {
        var l = SegmentLifecycle(thresholds: thresholds, manifest: Manifest(), deadCounts: [:])
        _ = l.growingChanged(rows: 100, bytes: 0, lsn: 1)
        guard case let .publish(m1) = l.sealFinished(segment: 1, rows: 100, dead: 0).first else { return }
        _ = l.manifestPublished(m1)
        #expect(l.deadRowsChanged(segment: 1, dead: 10).isEmpty, "10% is below the 20% threshold")
        let c = l.deadRowsChanged(segment: 1, dead: 25)
        guard case let .compact(segments, into) = c.first else { Issue.record("expected compaction"); return }
        #expect(segments == [1])
        #expect(l.deadRowsChanged(segment: 1, dead: 30).isEmpty, "one compaction at a time")
        guard case let .publish(m2) = l.compactionFinished(replaced: [1], into: into, rows: 70, dead: 2).first else { return }
        #expect(m2.segments == [.init(id: into, rows: 70, tombstones: "tombstones-2.bin")])
        #expect(m2.checkpointLSN == 1)
        #expect(l.manifestPublished(m2).contains(.deleteSegmentFiles([1])))
    }

    @Test func smallNeighboursMerge() {
        let manifest = Manifest(version: 1, checkpointLSN: 9, nextSegmentID: 5, segments: [
            .init(id: 1, rows: 90, tombstones: nil), .init(id: 2, rows: 30, tombstones: nil),
            .init(id: 3, rows: 20, tombstones: nil), .init(id: 4, rows: 40, tombstones: nil),
        ])
        var l = SegmentLifecycle(thresholds: thresholds, manifest: manifest, deadCounts: [:])
        #expect(l.planCompaction(force: false) == .compact(segments: [2, 3, 4], into: 6), "30 + 20 + 40 live rows fit in one segment of 100")
    }

    @Test func fullyDeletedSegmentDisappears() {
        let manifest = Manifest(version: 1, checkpointLSN: 9, nextSegmentID: 2, segments: [.init(id: 1, rows: 90, tombstones: "t")])
        var l = SegmentLifecycle(thresholds: thresholds, manifest: manifest, deadCounts: [1: 90])
        guard case let .compact(_, into) = l.planCompaction(force: false) else { Issue.record("expected compaction"); return }
        guard case let .publish(m) = l.compactionFinished(replaced: [1], into: into, rows: 0, dead: 0).first else { return }
        #expect(m.segments.isEmpty)
    }

    @Test func checkpointDeletesOnlyFullyCoveredFiles() {
        #expect(WALCheckpointPlan.obsolete(files: [1, 50, 120], checkpoint: 49) == [1])
        #expect(WALCheckpointPlan.obsolete(files: [1, 50, 120], checkpoint: 48) == [])
        #expect(WALCheckpointPlan.obsolete(files: [1, 50, 120], checkpoint: 500) == [1, 50])
        #expect(WALCheckpointPlan.obsolete(files: [1], checkpoint: 500) == [])
    }

    @Test func manifestCodecRoundTripAndChecksum() throws {
        let m = Manifest(version: 3, checkpointLSN: 77, nextSegmentID: 9, segments: [.init(id: 4, rows: 10, tombstones: "tombstones-3.bin")])
        var bytes = ManifestCodec.encode(m)
        #expect(try ManifestCodec.decode(bytes, path: "M") == m)
        bytes[bytes.count - 3] ^= 1
        #expect(throws: StorageError.self) { try ManifestCodec.decode(bytes, path: "M") }
    }

    @Test func postingsFilterEqualityAndIn() {
        var p = MetadataPostings()
        p.add(row: 0, ["c": .string("a"), "y": .int(1), "b": .bool(true)])
        p.add(row: 1, ["c": .string("b"), "y": .int(1), "b": .bool(false)])
        p.add(row: 2, ["c": .string("a"), "y": .int(2)])
        p.add(row: 3, ["c": .string("c"), "y": .double(1)])
        #expect(p.rows(matching: ["c": .equals(.string("a"))], below: 10) == [0, 2])
        #expect(p.rows(matching: ["c": .oneOf([.string("a"), .string("c")])], below: 10) == [0, 2, 3])
        #expect(p.rows(matching: ["c": .equals(.string("a")), "y": .equals(.int(1))], below: 10) == [0])
        #expect(p.rows(matching: ["y": .equals(.int(1))], below: 10) == [0, 1], "a double 1.0 is not the int 1")
        #expect(p.rows(matching: ["b": .equals(.bool(false))], below: 10) == [1])
        #expect(p.rows(matching: ["c": .oneOf([])], below: 10) == [])
        #expect(p.rows(matching: ["c": .equals(.string("a"))], below: 2) == [0])
        #expect(p.rows(matching: [:], below: 10) == nil)
    }

    @Test func postingsWithUniqueAndRepeatedValuesRoundTrip() throws {
        var p = MetadataPostings()
        for row in 0..<200 { p.add(row: UInt32(row), ["n": .int(Int64(row)), "c": .string("c\(row % 7)")]) }
        #expect(p.rows(matching: ["n": .equals(.int(42))], below: 1000) == [42])
        #expect(p.rows(matching: ["n": .oneOf([.int(5), .int(3)])], below: 1000) == [3, 5])
        #expect(p.rows(matching: ["c": .equals(.string("c3"))], below: 1000) == Array(stride(from: UInt32(3), to: 200, by: 7)))
        #expect(p.rows(matching: ["c": .equals(.string("c3")), "n": .equals(.int(10))], below: 1000) == [10])
        var w = ByteWriter()
        p.encode(into: &w)
        let decoded = try w.bytes.withUnsafeBytes { raw -> MetadataPostings in
            var r = ByteReader(raw)
            return try MetadataPostings.decode(&r)
        }
        #expect(decoded == p)
    }
}
