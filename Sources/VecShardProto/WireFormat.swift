/// Protocol-buffers wire format (proto3), written by hand: varints, zigzag, fixed32/64,
/// length-delimited fields, packed and unpacked repeated fields, nested messages, unknown fields
/// skipped. Nothing here traps on any input: malformed bytes become `ProtoError`.

/// The wire type carried in the low three bits of a field tag.
public enum WireType: UInt8, Sendable {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case startGroup = 3
    case endGroup = 4
    case fixed32 = 5
}

/// A decoding failure. `isResourceExhausted` separates "too big / too deep" (gRPC
/// RESOURCE_EXHAUSTED) from malformed bytes (INVALID_ARGUMENT).
public struct ProtoError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case malformed
        case resourceExhausted
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    static func truncated(_ what: String) -> ProtoError { ProtoError(.malformed, "truncated message: \(what) runs past the end") }
}

/// Limits a decoder enforces, so hostile input cannot make it allocate or recurse without bound.
public struct ProtoLimits: Sendable {
    /// Nested messages (and groups) deeper than this are refused.
    public var maxDepth = 64
    /// Elements of one repeated field in one message.
    public var maxRepeated = 16 * 1024 * 1024
    /// Bytes of one string or bytes field.
    public var maxFieldBytes = 64 * 1024 * 1024

    public init() {}
}

@inline(__always)
func zigzagEncode(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }

@inline(__always)
func zigzagDecode(_ v: UInt64) -> Int64 { Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }

@inline(__always)
func varintSize(_ v: UInt64) -> Int {
    v == 0 ? 1 : (64 - v.leadingZeroBitCount + 6) / 7
}
