import Testing
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

@Suite("WAL record codec")
struct WALRecordCodecTests {
    let upsert = WALRecord(lsn: 7, operation: .upsert([
        Point(id: "a", vector: [1, 2, 3], metadata: ["cat": .string("books"), "year": .int(2021), "price": .double(9.5), "new": .bool(true)]),
        Point(id: "ü-2", vector: [-1, 0, 0.5]),
    ]))
    let delete = WALRecord(lsn: 8, operation: .delete(["a", "b"]))

    func file(_ records: [WALRecord], first: UInt64 = 1) -> [UInt8] {
        WALFileHeader.encode(firstLSN: first) + records.flatMap { WALRecordCodec.encode($0) }
    }

    func scan(_ bytes: [UInt8]) -> (records: [WALRecord], valid: Int, damage: String?) {
        bytes.withUnsafeBytes { raw in
            var s = WALFileScanner(raw)
            var out: [WALRecord] = []
            while true {
                switch s.next() {
                case let .record(r): out.append(r)
                case .skipped: Issue.record("no record is skipped without skipThrough")
                case let .end(valid, damage): return (out, valid, damage)
                }
            }
        }
    }

    @Test func roundTrip() {
        for record in [upsert, delete] {
            let bytes = WALRecordCodec.encode(record)
            let decoded = bytes.withUnsafeBytes { WALRecordCodec.decode($0, at: 0) }
            #expect(decoded == .record(record, length: bytes.count))
        }
    }

    @Test func payloadCapacityIsExactAndHeaderWriterMatchesHeader() {
        let many = WALRecord(lsn: 9, operation: .upsert((0..<50).map {
            Point(id: "p-\($0)-ü", vector: [Float($0), 1, 2], metadata: $0 % 3 == 0 ? [:] : ["k\($0 % 5)": .string("v\($0)"), "n": .int(Int64($0))])
        }))
        for record in [upsert, delete, many, WALRecord(lsn: 1, operation: .delete([]))] {
            let payload = WALRecordCodec.encodePayload(record.operation)
            #expect(WALRecordCodec.payloadCapacity(record.operation) == payload.count)
            let header = WALRecordCodec.header(lsn: record.lsn, payloadCount: payload.count, payloadHash: XXH64.hash(payload))
            var written = [UInt8](repeating: 0xAA, count: WALRecordCodec.headerBytes)
            written.withUnsafeMutableBytes {
                WALRecordCodec.writeHeader(into: $0.baseAddress!, lsn: record.lsn, payloadCount: payload.count, payloadHash: XXH64.hash(payload))
            }
            #expect(written == header)
        }
    }

    @Test func recordsAtOrBelowSkipThroughAreCheckedNotDecoded() {
        let bytes = file([upsert, delete], first: 7)
        bytes.withUnsafeBytes { raw in
            var s = WALFileScanner(raw, skipThrough: 7)
            #expect(s.next() == .skipped(lsn: 7))
            #expect(s.next() == .record(delete))
            #expect(s.next() == .end(validLength: bytes.count, damage: nil))
        }
        // A skipped record is still checksummed: damage in it ends the valid prefix there.
        var damaged = bytes
        damaged[WALFileHeader.bytes + 30] ^= 1
        damaged.withUnsafeBytes { raw in
            var s = WALFileScanner(raw, skipThrough: 7)
            guard case let .end(valid, damage) = s.next() else { Issue.record("expected the end"); return }
            #expect(valid == WALFileHeader.bytes && damage != nil)
        }
    }

    @Test func cleanFileEndsWithoutDamage() {
        let bytes = file([upsert, delete])
        let r = scan(bytes)
        #expect(r.records == [upsert, delete])
        #expect(r.valid == bytes.count)
        #expect(r.damage == nil)
    }

    @Test func tornTailAtEveryCutKeepsCompleteRecords() {
        let first = WALFileHeader.bytes + WALRecordCodec.encode(upsert).count
        let bytes = file([upsert, delete])
        for cut in first..<bytes.count {
            let r = scan(Array(bytes[0..<cut]))
            #expect(r.records == [upsert])
            #expect(r.valid == first)
            #expect((r.damage != nil) == (cut > first))
        }
    }

    @Test func garbageTailIsCut() {
        var rng = SplitMix64(seed: 3)
        let good = file([upsert, delete])
        for n in [1, 23, 24, 25, 100, 4096] {
            let garbage = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let r = scan(good + garbage)
            #expect(r.records == [upsert, delete])
            #expect(r.valid == good.count)
            #expect(r.damage != nil)
        }
    }

    @Test func flippedBitInARecordIsDetected() {
        let good = file([upsert, delete])
        let second = WALFileHeader.bytes + WALRecordCodec.encode(upsert).count
        for offset in [second, second + 5, second + 12, second + 20, good.count - 1] {
            var bad = good
            bad[offset] ^= 0x10
            let r = scan(bad)
            #expect(r.records == [upsert], "flip at \(offset)")
            #expect(r.valid == second)
        }
    }

    @Test func zeroFilledTailIsACleanEnd() {
        // Preallocated or block-padded files end in zeros after the last record.
        let good = file([upsert])
        let r = scan(good + [UInt8](repeating: 0, count: 5000))
        #expect(r.records == [upsert])
        #expect(r.valid == good.count)
        #expect(r.damage == nil)
        var dirty = good + [UInt8](repeating: 0, count: 5000)
        dirty[good.count + 4000] = 1
        #expect(scan(dirty).damage != nil, "a non-zero byte after the records is damage")
    }

    @Test func outOfOrderLSNEndsTheValidPrefix() {
        let r = scan(file([delete, upsert]))
        #expect(r.records == [delete])
        #expect(r.damage?.contains("out of order") == true)
    }

    @Test func corruptHeaderMeansNoRecords() {
        var bytes = file([upsert])
        bytes[3] ^= 1
        let r = scan(bytes)
        #expect(r.records.isEmpty)
        #expect(r.valid == 0)
    }

    @Test func hugeLengthFieldIsGarbageNotAnAllocation() {
        var bytes = file([upsert])
        let at = WALFileHeader.bytes + 4
        bytes[at + 3] = 0x7F // ~2 GB payload claimed
        #expect(scan(bytes).records.isEmpty)
    }

    @Test func xxhash64KnownValues() {
        // Reference values of the xxHash64 specification (seed 0).
        #expect(XXH64.hash([UInt8]()) == 0xEF46_DB37_51D8_E999)
        #expect(XXH64.hash(Array("a".utf8)) == 0xD24E_C4F1_A98C_6E5B)
        #expect(XXH64.hash(Array("abc".utf8)) == 0x44BC_2CF5_AD77_0999)
        #expect(XXH64.hash(Array("Nobody inspects the spammish repetition".utf8)) == 0xFBCE_A83C_8A37_8BF1)
    }

    @Test func fileNamesSortByLSN() {
        #expect(WALFileName.make(firstLSN: 42) == "wal-00000000000000000042.log")
        #expect(WALFileName.parse("wal-00000000000000000042.log") == 42)
        #expect(WALFileName.parse("MANIFEST") == nil)
    }
}
