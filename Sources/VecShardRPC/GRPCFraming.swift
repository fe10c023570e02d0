import NIOCore
import VecShardProto

/// gRPC's length-prefixed messages: one flag byte (1 = compressed), a 4-byte big-endian length,
/// then the message.
public enum GRPCFraming {
    /// Frames `message` (uncompressed).
    public static func frame(_ message: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count), endianness: .big)
        buffer.writeBytes(message)
    }

    public static func frame<M: ProtoMessage>(_ message: M) -> ByteBuffer {
        let bytes = message.serializedBytes()
        var buffer = ByteBuffer()
        buffer.reserveCapacity(bytes.count + 5)
        frame(bytes, into: &buffer)
        return buffer
    }

    /// Splits a complete body into its messages. Compressed messages are refused with
    /// UNIMPLEMENTED (naming the encoding), oversized ones with RESOURCE_EXHAUSTED.
    public static func messages(in body: ByteBuffer, maxMessageBytes: Int, encoding: String?) throws -> [ByteBuffer] {
        var body = body
        var messages: [ByteBuffer] = []
        while body.readableBytes > 0 {
            guard body.readableBytes >= 5, let flag = body.readInteger(as: UInt8.self),
                  let length = body.readInteger(endianness: .big, as: UInt32.self) else {
                throw GRPCError(.internal, "truncated gRPC message prefix (\(body.readableBytes) bytes left)")
            }
            if Int(length) > maxMessageBytes {
                throw GRPCError(.resourceExhausted, "message of \(length) bytes exceeds the maximum of \(maxMessageBytes)")
            }
            guard let message = body.readSlice(length: Int(length)) else {
                throw GRPCError(.internal, "truncated gRPC message: \(length) bytes announced, \(body.readableBytes) present")
            }
            switch flag {
            case 0: messages.append(message)
            case 1:
                throw GRPCError(.unimplemented, "compressed messages (grpc-encoding \(encoding ?? "unspecified")) are not supported; send them uncompressed (identity)")
            default:
                throw GRPCError(.internal, "invalid gRPC compressed-flag \(flag)")
            }
        }
        return messages
    }
}

/// Splits a stream of DATA chunks into gRPC messages as they complete (a message may span
/// chunks, a chunk may hold several). Used from one stream's callbacks, one at a time.
public final class GRPCDeframer: @unchecked Sendable {
    private var buffer = ByteBuffer()
    private let maxMessageBytes: Int

    public init(maxMessageBytes: Int) { self.maxMessageBytes = maxMessageBytes }

    /// True when no partial message is buffered.
    public var isEmpty: Bool { buffer.readableBytes == 0 }

    /// The messages `chunk` completes.
    public func append(_ chunk: ByteBuffer) throws -> [ByteBuffer] {
        if buffer.readableBytes == 0 { buffer = chunk } else { var chunk = chunk; buffer.writeBuffer(&chunk) }
        var messages: [ByteBuffer] = []
        while buffer.readableBytes >= 5 {
            let start = buffer.readerIndex
            let flag = buffer.getInteger(at: start, as: UInt8.self)!
            let length = Int(buffer.getInteger(at: start + 1, endianness: .big, as: UInt32.self)!)
            if length > maxMessageBytes {
                throw GRPCError(.resourceExhausted, "message of \(length) bytes exceeds the maximum of \(maxMessageBytes)")
            }
            guard flag == 0 else {
                throw GRPCError(flag == 1 ? .unimplemented : .internal,
                                flag == 1 ? "compressed messages are not supported" : "invalid gRPC compressed-flag \(flag)")
            }
            guard buffer.readableBytes >= 5 + length else { break }
            buffer.moveReaderIndex(forwardBy: 5)
            messages.append(buffer.readSlice(length: length)!)
        }
        if buffer.readableBytes == 0 { buffer.clear() } else if buffer.readerIndex > 1 << 16 { buffer.discardReadBytes() }
        return messages
    }
}
