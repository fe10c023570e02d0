import CNGHTTP2
import NIOCore

/// Errors of the HTTP/2 layer, each saying how far it reaches: a stream error resets one stream,
/// a connection error ends the connection (and fails every stream on it).
public enum HTTP2Error: Error, CustomStringConvertible, Sendable {
    /// The peer reset the stream, or we did; carries the HTTP/2 error code.
    case streamReset(code: UInt32)
    /// nghttp2 refused the connection's bytes or state (protocol violation, bad preface, flood).
    case connection(String)
    /// The connection closed before the stream completed.
    case connectionClosed
    /// The peer refused the stream before processing it (RST_STREAM REFUSED_STREAM, or a GOAWAY
    /// whose last stream id is below it): safe to retry.
    case refusedStream

    public var description: String {
        switch self {
        case .streamReset(let code): return "HTTP/2 stream reset (\(HTTP2Error.name(ofErrorCode: code)))"
        case .connection(let m): return "HTTP/2 connection error: \(m)"
        case .connectionClosed: return "HTTP/2 connection closed before the response completed"
        case .refusedStream: return "HTTP/2 stream refused by the peer before processing (REFUSED_STREAM or GOAWAY)"
        }
    }

    static func name(ofErrorCode code: UInt32) -> String {
        String(cString: nghttp2_http2_strerror(code))
    }
}

/// Owns one `nghttp2_session` and moves bytes between it and NIO buffers. Callbacks reach the
/// owning handler through `user_data`; this wrapper never outlives it (the handler deletes the
/// session in `handlerRemoved`).
final class NGHTTP2Session {
    let raw: OpaquePointer

    /// - Parameter configure: sets the callbacks on the (temporary) callbacks object.
    init(server: Bool, userData: UnsafeMutableRawPointer, configure: (OpaquePointer) -> Void, maxSendHeaderBlock: Int = 1 << 20) {
        var callbacks: OpaquePointer?
        precondition(nghttp2_session_callbacks_new(&callbacks) == 0, "nghttp2 out of memory")
        defer { nghttp2_session_callbacks_del(callbacks) }
        configure(callbacks!)
        var option: OpaquePointer?
        precondition(nghttp2_option_new(&option) == 0, "nghttp2 out of memory")
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_max_send_header_block_length(option, maxSendHeaderBlock)
        // Until the peer's SETTINGS arrive, assume the 100 streams RFC 9113 recommends as a floor
        // rather than nghttp2's "unlimited".
        nghttp2_option_set_peer_max_concurrent_streams(option, 100)
        var session: OpaquePointer?
        let rv = server
            ? nghttp2_session_server_new2(&session, callbacks, userData, option)
            : nghttp2_session_client_new2(&session, callbacks, userData, option)
        precondition(rv == 0 && session != nil, "nghttp2_session_new failed: \(rv)")
        raw = session!
    }

    func destroy() {
        nghttp2_session_del(raw)
    }

    /// Feeds received bytes; callbacks run synchronously inside. Throws on a connection error.
    func receive(_ buffer: ByteBuffer) throws {
        let rv = buffer.withUnsafeReadableBytes { bytes -> Int in
            guard let base = bytes.baseAddress else { return 0 }
            return vs_mem_recv(raw, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        if rv < 0 { throw HTTP2Error.connection(String(cString: nghttp2_strerror(Int32(rv)))) }
    }

    /// Serializes pending frames into `out` until nghttp2 has nothing more or `out` holds
    /// `limit` bytes. Returns false on a fatal session error.
    func drainOutput(into out: inout ByteBuffer, limit: Int) -> Bool {
        while out.readableBytes < limit {
            var data: UnsafePointer<UInt8>?
            let n = vs_mem_send(raw, &data)
            if n < 0 { return false }
            if n == 0 { break }
            out.writeBytes(UnsafeRawBufferPointer(start: data, count: n))
        }
        return true
    }

    var wantsIO: Bool { nghttp2_session_want_read(raw) != 0 || nghttp2_session_want_write(raw) != 0 }
    var wantsWrite: Bool { nghttp2_session_want_write(raw) != 0 }

    func submitSettings(_ entries: [(Int32, UInt32)]) {
        var settings = entries.map { nghttp2_settings_entry(settings_id: $0.0, value: $0.1) }
        _ = settings.withUnsafeMutableBufferPointer { nghttp2_submit_settings(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), $0.baseAddress, $0.count) }
    }

    func setConnectionWindow(_ size: Int32) {
        _ = nghttp2_session_set_local_window_size(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, size)
    }

    func resetStream(_ id: Int32, code: UInt32) {
        _ = nghttp2_submit_rst_stream(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, code)
    }

    /// Graceful GOAWAY: streams up to the last one processed complete; no new ones start.
    func submitGoaway(code: UInt32 = NGHTTP2_NO_ERROR.rawValue) {
        _ = nghttp2_submit_goaway(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(raw), code, nil, 0)
    }
}

/// A header list laid out for nghttp2: one contiguous byte buffer plus an `nghttp2_nv` array
/// pointing into it. nghttp2 copies header fields when a frame is submitted, so the storage only
/// lives for the duration of `withNV`.
struct HeaderBlock {
    private var bytes: [UInt8] = []
    private var spans: [(nameStart: Int, nameCount: Int, valueCount: Int)] = []

    init(capacity: Int = 8) {
        bytes.reserveCapacity(capacity * 24)
        spans.reserveCapacity(capacity)
    }

    /// Appends a field; names are lower-cased (HTTP/2 requires it).
    mutating func add(_ name: String, _ value: String) {
        let start = bytes.count
        for b in name.utf8 { bytes.append(b >= 65 && b <= 90 ? b | 0x20 : b) }
        let nameCount = bytes.count - start
        bytes.append(contentsOf: value.utf8)
        spans.append((start, nameCount, bytes.count - start - nameCount))
    }

    /// Adds regular headers, skipping connection-specific ones that HTTP/2 forbids.
    mutating func add(headers: some Sequence<(name: String, value: String)>) {
        for (name, value) in headers {
            switch name.lowercased() {
            case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade": continue
            default: add(name, value)
            }
        }
    }

    var isEmpty: Bool { spans.isEmpty }

    mutating func withNV<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        let spans = self.spans
        return bytes.withUnsafeMutableBufferPointer { storage -> R in
            let base = storage.baseAddress ?? UnsafeMutablePointer<UInt8>(bitPattern: 1)!
            var nv = [nghttp2_nv]()
            nv.reserveCapacity(spans.count)
            for s in spans {
                nv.append(nghttp2_nv(name: base + s.nameStart, value: base + s.nameStart + s.nameCount,
                                     namelen: s.nameCount, valuelen: s.valueCount,
                                     flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
            }
            return nv.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }
}

@inline(__always)
func makeString(_ p: UnsafePointer<UInt8>?, _ n: Int) -> String {
    guard let p, n > 0 else { return "" }
    return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
}

/// The HTTP/2 connection preface a client sends first.
let http2ClientPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
