import Testing
import VecShardPrimitives
@testable import VecShardProto

@Suite struct WireFormatTests {
    @Test(arguments: [UInt64(0), 1, 127, 128, 300, 16_383, 16_384, UInt64(UInt32.max), 1 << 62, UInt64.max])
    func varintRoundTrip(_ value: UInt64) throws {
        var writer = ProtoWriter()
        writer.writeRawVarint(value)
        #expect(writer.bytes.count == varintSize(value))
        let (decoded, atEnd) = try writer.bytes.withUnsafeBytes { raw in
            var reader = ProtoReader(raw)
            return (try reader.readRawVarint(), reader.isAtEnd)
        }
        #expect(decoded == value)
        #expect(atEnd)
    }

    @Test func knownEncodings() {
        var w = ProtoWriter()
        w.writeUInt32(1, 150)                   // the protobuf documentation's example
        #expect(w.bytes == [0x08, 0x96, 0x01])
        w = ProtoWriter()
        w.writeInt64(2, -1)                      // negative int64: ten bytes
        #expect(w.bytes == [0x10] + [UInt8](repeating: 0xff, count: 9) + [0x01])
        w = ProtoWriter()
        w.writeSInt64(2, -1)                     // zigzag: one byte
        #expect(w.bytes == [0x10, 0x01])
        w = ProtoWriter()
        w.writeString(2, "testing")
        #expect(w.bytes == [0x12, 0x07] + Array("testing".utf8))
        w = ProtoWriter()
        w.writePackedFloats(4, [1, -2])
        #expect(w.bytes == [0x22, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0])
    }

    @Test func proto3DefaultsAreOmittedButNegativeZeroIsNot() {
        var w = ProtoWriter()
        w.writeUInt64(1, 0)
        w.writeBool(2, false)
        w.writeString(3, "")
        w.writeFloat(4, 0)
        w.writeDouble(5, 0)
        #expect(w.bytes.isEmpty)
        w.writeFloat(4, -0.0)
        #expect(w.bytes == [0x25, 0x00, 0x00, 0x00, 0x80])
    }

    @Test func zigzag() {
        for v: Int64 in [0, -1, 1, -2, 2, .max, .min] { #expect(zigzagDecode(zigzagEncode(v)) == v) }
        #expect(zigzagEncode(-1) == 1)
        #expect(zigzagEncode(1) == 2)
    }

    @Test func nestedMessagesOfEverySizeRoundTrip() throws {
        for n in [0, 1, 31, 32, 33, 4000, 40_000] { // 32 floats = 128 bytes: the prefix grows to two bytes
            let point = PointMessage(id: "p", vector: (0..<n).map { Float($0) }, metadata: ["a": .int(1)])
            let request = UpsertRequest(collection: "c", points: [point, point])
            let decoded = try UpsertRequest(serializedBytes: request.serializedBytes())
            #expect(decoded == request)
        }
    }

    @Test func unknownFieldsOfEveryWireTypeAreSkipped() throws {
        var w = ProtoWriter()
        w.writeUInt64(99, 7)                       // varint
        w.writeFixed64(98, 0x1122334455667788)     // fixed64
        w.writeFloat(97, 1.5)                      // fixed32
        w.writeString(96, "ignored")               // length-delimited
        w.writeTag(95, .startGroup)                // a group with a nested group inside
        w.writeUInt64(1, 5)
        w.writeTag(94, .startGroup)
        w.writeTag(94, .endGroup)
        w.writeTag(95, .endGroup)
        w.writeString(1, "kept")
        let point = try PointMessage(serializedBytes: w.bytes)
        #expect(point.id == "kept")
    }

    @Test func unpackedRepeatedFloatsAreAccepted() throws {
        var w = ProtoWriter()
        w.writeFloat(2, 1, always: true)
        w.writeFloat(2, 2, always: true)
        w.writePackedFloats(2, [3, 4])
        #expect(try PointMessage(serializedBytes: w.bytes).vector == [1, 2, 3, 4])
    }

    @Test func lastSingularValueWins() throws {
        var w = ProtoWriter()
        w.writeString(1, "first")
        w.writeString(1, "second")
        #expect(try PointMessage(serializedBytes: w.bytes).id == "second")
    }

    private func decodeError(_ bytes: [UInt8], limits: ProtoLimits = ProtoLimits()) -> ProtoError? {
        do {
            _ = try SearchRequest(serializedBytes: bytes, limits: limits)
            return nil
        } catch let error as ProtoError {
            return error
        } catch {
            return nil
        }
    }

    @Test func malformedInputIsRejectedWithAReason() {
        let cases: [([UInt8], String)] = [
            ([0x0a, 0x05, 0x61], "runs past the end"),                     // string longer than the buffer
            ([0x98, 0x06, 0x80], "truncated"),                             // unknown field 99: varint cut short
            ([0x98, 0x06] + [UInt8](repeating: 0xff, count: 10) + [0x01], "varint longer"), // 11-byte varint
            ([0x0e], "invalid wire type 6"),
            ([0x00], "invalid field number 0"),
            ([0x9c, 0x06], "unexpected end-group for field 99"),
            ([0x9b, 0x06, 0x14], "group 99 closed by end-group 2"),
            ([0x0a, 0x01], "runs past the end"),
            ([0x12, 0x04, 0x0a, 0x02, 0x00, 0x00], "multiple of 4"),        // a query whose packed vector has 2 bytes
            ([0x0a, 0x02, 0xc3, 0x28], "UTF-8"),                            // invalid UTF-8 in a string
            ([0x0d, 0x00, 0x00, 0x00, 0x00], "wire type 5, expected 2"),   // collection sent as fixed32
        ]
        for (bytes, reason) in cases {
            let error = decodeError(bytes)
            #expect(error?.kind == .malformed, "\(bytes)")
            #expect(error?.message.contains(reason) == true, "\(bytes): \(error?.message ?? "decoded")")
        }
    }

    @Test func deepNestingAndHugeCountsAreResourceExhausted() {
        // A group nested 200 deep inside an unknown field.
        var bytes: [UInt8] = []
        for _ in 0..<200 { bytes.append(0xfb); bytes.append(0x01) } // field 31, start group
        let deep = decodeError(bytes)
        #expect(deep?.kind == .resourceExhausted)
        #expect(deep?.message.contains("deeper than 64") == true)
        var limits = ProtoLimits()
        limits.maxRepeated = 3
        let request = SearchRequest(collection: "c", queries: Array(repeating: QueryMessage(vector: [1]), count: 4))
        let many = decodeError(request.serializedBytes(), limits: limits)
        #expect(many?.kind == .resourceExhausted)
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 42)
        for round in 0..<20_000 {
            let n = Int(rng.next() % 64)
            var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if round % 3 == 0, n > 0 { bytes[0] = 0x12 } // bias towards nested-message paths
            _ = try? SearchRequest(serializedBytes: bytes)
            _ = try? UpsertRequest(serializedBytes: bytes)
            _ = try? SearchResponse(serializedBytes: bytes)
            _ = try? ScanRequest(serializedBytes: bytes)
            _ = try? CollectionInfoMessage(serializedBytes: bytes)
        }
    }
}

