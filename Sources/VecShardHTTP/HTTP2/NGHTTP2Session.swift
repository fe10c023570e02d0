import CNGHTTP2
import NIOCore
import NIOHTTP1

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
    /// - Parameter manualWindowUpdates: no automatic WINDOW_UPDATE; the owner gives window back
    ///   with `nghttp2_session_consume_connection` / `_stream` (received DATA it discards too).
    init(server: Bool, userData: UnsafeMutableRawPointer, manualWindowUpdates: Bool = false,
         configure: (OpaquePointer) -> Void, maxSendHeaderBlock: Int = 1 << 20) {
        var callbacks: OpaquePointer?
        precondition(nghttp2_session_callbacks_new(&callbacks) == 0, "nghttp2 out of memory")
        defer { nghttp2_session_callbacks_del(callbacks) }
        configure(callbacks!)
        var option: OpaquePointer?
        precondition(nghttp2_option_new(&option) == 0, "nghttp2 out of memory")
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_max_send_header_block_length(option, maxSendHeaderBlock)
        if manualWindowUpdates { nghttp2_option_set_no_auto_window_update(option, 1) }
        // Until the peer's SETTINGS arrive, assume the 100 streams RFC 9113 recommends as a floor
        // rather than nghttp2's "unlimited".
        nghttp2_option_set_peer_max_concurrent_streams(option, 100)
        // Closed streams are kept by default only to keep the RFC 7540 priority tree exact for
        // PRIORITY frames that name them; nothing here schedules by priority, and keeping them
        // costs every stream a detour through the closed list.
        nghttp2_option_set_no_closed_streams(option, 1)
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

/// A header list for nghttp2. Fields are collected as strings and laid out only inside `withNV`:
/// one temporary (stack-allocated where small) byte area plus an `nghttp2_nv` array pointing into
/// it. nghttp2 copies header fields when a frame is submitted, so nothing outlives the call.
struct HeaderBlock {
    private var fields: [(name: String, value: String)] = []
    private var byteCount = 0

    init(capacity: Int = 8) {
        fields.reserveCapacity(capacity)
    }

    /// Appends a field; the name is lower-cased on encoding (HTTP/2 requires it).
    mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
        byteCount += name.utf8.count + value.utf8.count
    }

    /// Adds regular headers, skipping the connection-specific ones HTTP/2 forbids.
    mutating func add(headers: some Sequence<(name: String, value: String)>) {
        for (name, value) in headers where !Self.isConnectionSpecific(name) {
            add(name, value)
        }
    }

    private static let connectionSpecific: [[UInt8]] = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"].map { Array($0.utf8) }

    static func isConnectionSpecific(_ name: String) -> Bool {
        let n = name.utf8.count
        guard n == 7 || n == 10 || n == 16 || n == 17 else { return false }
        return connectionSpecific.contains { candidate in
            candidate.count == n && zip(candidate, name.utf8).allSatisfy { $0 == $1 | (($1 >= 65 && $1 <= 90) ? 0x20 : 0) }
        }
    }

    var isEmpty: Bool { fields.isEmpty }

    /// `:status`, the response headers, and `content-length` when the body size is known.
    static func response(status: HTTPResponseStatus, headers: HTTPHeaders, contentLength: Int?) -> HeaderBlock {
        var block = HeaderBlock(capacity: headers.count + 2)
        block.add(":status", String(status.code))
        block.add(headers: headers)
        if let contentLength { block.add("content-length", String(contentLength)) }
        return block
    }

    /// Bytes the encoded fields occupy, and the number of `nghttp2_nv` entries.
    var encodedSize: (bytes: Int, fields: Int) { (byteCount, fields.count) }

    /// Lays the fields out in `bytes` (at least `encodedSize.bytes` long) and points `nv` (at
    /// least `encodedSize.fields` entries) into them.
    func encode(into bytes: UnsafeMutablePointer<UInt8>, nv: UnsafeMutablePointer<nghttp2_nv>) {
        var offset = 0
        for (i, field) in fields.enumerated() {
            let nameStart = offset
            offset += Self.copy(field.name, to: bytes + offset, lowercasing: true)
            let valueStart = offset
            offset += Self.copy(field.value, to: bytes + offset, lowercasing: false)
            (nv + i).initialize(to: nghttp2_nv(name: bytes + nameStart, value: bytes + valueStart,
                                               namelen: valueStart - nameStart, valuelen: offset - valueStart,
                                               flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
        }
    }

    func withNV<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(byteCount, 1)) { bytes in
            withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(fields.count, 1)) { nv in
                encode(into: bytes.baseAddress!, nv: nv.baseAddress!)
                return body(nv.baseAddress!, fields.count)
            }
        }
    }

    /// Copies `string`'s UTF-8 to `destination` (ASCII upper case lowered when `lowercasing`,
    /// as HTTP/2 field names must be); returns the bytes written. Shared with the client's
    /// `RequestHeaderEncoder`.
    @inline(__always)
    static func copy(_ string: String, to destination: UnsafeMutablePointer<UInt8>, lowercasing: Bool) -> Int {
        var string = string
        return string.withUTF8 { utf8 in
            guard let source = utf8.baseAddress, utf8.count > 0 else { return 0 }
            destination.update(from: source, count: utf8.count)
            if lowercasing {
                for i in 0..<utf8.count where destination[i] >= 65 && destination[i] <= 90 { destination[i] |= 0x20 }
            }
            return utf8.count
        }
    }
}

/// A complete response header list (`:status` first) laid out for nghttp2 once and reused for
/// every response that carries it: static answers such as probes skip header encoding entirely.
public final class PreparedHeaderBlock: @unchecked Sendable { // immutable after init
    private let bytes: UnsafeMutablePointer<UInt8>
    private let nv: UnsafeMutablePointer<nghttp2_nv>
    private let count: Int

    init(_ block: HeaderBlock) {
        let size = block.encodedSize
        bytes = .allocate(capacity: max(size.bytes, 1))
        nv = .allocate(capacity: max(size.fields, 1))
        count = size.fields
        block.encode(into: bytes, nv: nv)
    }

    deinit {
        bytes.deallocate()
        nv.deallocate()
    }

    func withNV<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R { body(nv, count) }
}

@inline(__always)
func makeString(_ p: UnsafePointer<UInt8>?, _ n: Int) -> String {
    guard let p, n > 0 else { return "" }
    return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
}

/// The HTTP/2 connection preface a client sends first.
let http2ClientPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
