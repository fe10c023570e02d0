/// Appends protobuf fields to one growing byte array. Nested messages are written in place:
/// the length prefix gets one byte up front and the body is shifted only when it turns out to
/// need more (bodies over 127 bytes), so encoding a large message does not allocate per element.
///
/// proto3 rules: the `write*` methods for singular fields omit default values (0, false, empty),
/// except where the field has explicit presence (`always: true`).
public struct ProtoWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    // MARK: primitives

    @inline(__always)
    public mutating func writeRawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    @inline(__always)
    public mutating func writeTag(_ field: Int, _ type: WireType) {
        writeRawVarint(UInt64(field) << 3 | UInt64(type.rawValue))
    }

    @inline(__always)
    mutating func writeRawFixed32(_ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func writeRawFixed64(_ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    // MARK: singular fields

    public mutating func writeUInt64(_ field: Int, _ v: UInt64, always: Bool = false) {
        guard v != 0 || always else { return }
        writeTag(field, .varint)
        writeRawVarint(v)
    }

    public mutating func writeUInt32(_ field: Int, _ v: UInt32, always: Bool = false) {
        writeUInt64(field, UInt64(v), always: always)
    }

    /// int64/int32 (negative values take ten bytes, as the format says).
    public mutating func writeInt64(_ field: Int, _ v: Int64, always: Bool = false) {
        writeUInt64(field, UInt64(bitPattern: v), always: always)
    }

    public mutating func writeInt32(_ field: Int, _ v: Int32, always: Bool = false) {
        writeUInt64(field, UInt64(bitPattern: Int64(v)), always: always)
    }

    /// sint64 (zigzag).
    public mutating func writeSInt64(_ field: Int, _ v: Int64, always: Bool = false) {
        writeUInt64(field, zigzagEncode(v), always: always)
    }

    public mutating func writeBool(_ field: Int, _ v: Bool, always: Bool = false) {
        writeUInt64(field, v ? 1 : 0, always: always)
    }

    /// float (fixed32). The default is +0.0 only: -0.0 is written.
    public mutating func writeFloat(_ field: Int, _ v: Float, always: Bool = false) {
        guard v.bitPattern != 0 || always else { return }
        writeTag(field, .fixed32)
        writeRawFixed32(v.bitPattern)
    }

    public mutating func writeDouble(_ field: Int, _ v: Double, always: Bool = false) {
        guard v.bitPattern != 0 || always else { return }
        writeTag(field, .fixed64)
        writeRawFixed64(v.bitPattern)
    }

    public mutating func writeFixed64(_ field: Int, _ v: UInt64, always: Bool = false) {
        guard v != 0 || always else { return }
        writeTag(field, .fixed64)
        writeRawFixed64(v)
    }

    public mutating func writeString(_ field: Int, _ v: String, always: Bool = false) {
        var s = v
        s.withUTF8 { writeBytes(field, UnsafeRawBufferPointer($0), always: always) }
    }

    public mutating func writeBytes(_ field: Int, _ v: UnsafeRawBufferPointer, always: Bool = false) {
        guard !v.isEmpty || always else { return }
        writeTag(field, .lengthDelimited)
        writeRawVarint(UInt64(v.count))
        bytes.append(contentsOf: v)
    }

    public mutating func writeBytes(_ field: Int, _ v: [UInt8], always: Bool = false) {
        v.withUnsafeBytes { writeBytes(field, $0, always: always) }
    }

    // MARK: repeated fields (packed where the format allows)

    /// `repeated float`, packed: one length prefix, then the raw little-endian floats.
    public mutating func writePackedFloats(_ field: Int, _ values: UnsafeBufferPointer<Float>) {
        guard !values.isEmpty else { return }
        writeTag(field, .lengthDelimited)
        writeRawVarint(UInt64(values.count * 4))
        #if _endian(little)
        bytes.append(contentsOf: UnsafeRawBufferPointer(values))
        #else
        for v in values { writeRawFixed32(v.bitPattern) }
        #endif
    }

    public mutating func writePackedFloats(_ field: Int, _ values: [Float]) {
        values.withUnsafeBufferPointer { writePackedFloats(field, $0) }
    }

    /// `repeated uint64/uint32/int64/bool` as packed varints.
    public mutating func writePackedVarints(_ field: Int, _ values: some Collection<UInt64>) {
        guard !values.isEmpty else { return }
        writeTag(field, .lengthDelimited)
        writeRawVarint(UInt64(values.reduce(0) { $0 + varintSize($1) }))
        for v in values { writeRawVarint(v) }
    }

    public mutating func writeRepeatedStrings(_ field: Int, _ values: [String]) {
        for v in values { writeString(field, v, always: true) }
    }

    // MARK: nested messages

    /// Writes a length-delimited field whose body `body` appends to this same writer.
    public mutating func writeNested(_ field: Int, always: Bool = true, _ body: (inout ProtoWriter) -> Void) {
        writeTag(field, .lengthDelimited)
        let prefixAt = bytes.count
        bytes.append(0)
        let start = bytes.count
        body(&self)
        let length = bytes.count - start
        if length == 0 && !always {
            bytes.removeLast(bytes.count - prefixAt)
            // Drop the tag too: an empty message field without presence is the default.
            var tagLength = 0
            var tag = UInt64(field) << 3 | UInt64(WireType.lengthDelimited.rawValue)
            repeat { tagLength += 1; tag >>= 7 } while tag != 0
            bytes.removeLast(tagLength)
            return
        }
        if length < 0x80 {
            bytes[prefixAt] = UInt8(length)
            return
        }
        let extra = varintSize(UInt64(length)) - 1
        bytes.append(contentsOf: repeatElement(0, count: extra))
        bytes.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            (base + start + extra).update(from: base + start, count: length) // memmove
            var v = UInt64(length)
            var i = prefixAt
            while v >= 0x80 {
                base[i] = UInt8(truncatingIfNeeded: v) | 0x80
                v >>= 7
                i += 1
            }
            base[i] = UInt8(v)
        }
    }

    public mutating func writeMessage<M: ProtoMessage>(_ field: Int, _ message: M) {
        writeNested(field) { message.encode(to: &$0) }
    }

    public mutating func writeMessage<M: ProtoMessage>(_ field: Int, _ message: M?) {
        guard let message else { return }
        writeNested(field) { message.encode(to: &$0) }
    }

    public mutating func writeRepeatedMessages<M: ProtoMessage>(_ field: Int, _ messages: [M]) {
        for m in messages { writeNested(field) { m.encode(to: &$0) } }
    }
}
