import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP connection for sending hand-made bytes (malformed requests, raw HTTP/2 frames).
final class RawConnection: @unchecked Sendable {
    private let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rv = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rv == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Closes both directions (the server sees the connection end); the descriptor stays valid.
    func shutdownBoth() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// Reads until `done` holds for what was received, the peer closes, or 5 s pass; on a thread
    /// of its own (never blocking the cooperative pool).
    func receive(until done: @escaping @Sendable ([UInt8]) -> Bool) async -> [UInt8] {
        (try? await blocking { self.receiveBlocking(until: done) }) ?? []
    }

    /// Reads what arrives within `milliseconds` (returns early when the peer closes; `closed`
    /// tells). Blocking: call it through `blocking` or from a test's own thread.
    func read(milliseconds: Int) -> (bytes: [UInt8], closed: Bool) {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        let end = DispatchTime.now().uptimeNanoseconds + UInt64(milliseconds) * 1_000_000
        while true {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < end else { return (received, false) }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(max(1, (end - now) / 1_000_000)))
            if ready <= 0 { continue }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (received, true) }
            received.append(contentsOf: chunk[0..<n])
        }
    }

    /// Waits until the peer closes the connection (true) or `milliseconds` pass (false),
    /// discarding what arrives.
    func waitForClose(milliseconds: Int) -> Bool {
        read(milliseconds: milliseconds).closed
    }

    private func receiveBlocking(until done: ([UInt8]) -> Bool) -> [UInt8] {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !done(received) {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received.append(contentsOf: chunk[0..<n])
        }
        return received
    }
}

/// Hand-made HTTP/2 frames (RFC 9113) with literal, never-Huffman HPACK fields: enough to drive a
/// server through sequences that well-behaved clients never produce.
enum RawHTTP2 {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    static let data: UInt8 = 0, headers: UInt8 = 1, rstStream: UInt8 = 3, settings: UInt8 = 4, goaway: UInt8 = 7, windowUpdate: UInt8 = 8
    static let endStream: UInt8 = 1, endHeaders: UInt8 = 4, ack: UInt8 = 1

    static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), type, flags,
                UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    static func headerBlock(_ fields: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (name, value) in fields {
            out.append(0x00) // literal without indexing, new name
            appendString(name, to: &out)
            appendString(value, to: &out)
        }
        return out
    }

    private static func appendString(_ s: String, to out: inout [UInt8]) {
        let bytes = Array(s.utf8)
        appendInteger(bytes.count, prefixBits: 7, to: &out)
        out += bytes
    }

    private static func appendInteger(_ value: Int, prefixBits: Int, to out: inout [UInt8]) {
        let max = (1 << prefixBits) - 1
        if value < max { out.append(UInt8(value)); return }
        out.append(UInt8(max))
        var rest = value - max
        while rest >= 128 { out.append(UInt8(rest & 0x7f | 0x80)); rest >>= 7 }
        out.append(UInt8(rest))
    }

    static func request(stream: UInt32, method: String, path: String, endStream: Bool) -> [UInt8] {
        frame(type: headers, flags: endHeaders | (endStream ? Self.endStream : 0), stream: stream,
              payload: headerBlock([(":method", method), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1")]))
    }

    /// A request header block with extra fields (`content-length`, `authorization`, ...).
    static func request(stream: UInt32, method: String, path: String, endStream: Bool, endHeaders: Bool = true,
                        fields: [(String, String)]) -> [UInt8] {
        frame(type: headers, flags: (endHeaders ? Self.endHeaders : 0) | (endStream ? Self.endStream : 0), stream: stream,
              payload: headerBlock([(":method", method), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1")] + fields))
    }

    /// The preface and an empty SETTINGS frame, then an ACK of the server's SETTINGS.
    static let opening = preface + frame(type: settings, flags: 0, stream: 0, payload: [])
        + frame(type: settings, flags: ack, stream: 0, payload: [])

    static func reset(stream: UInt32, code: UInt32 = 8) -> [UInt8] {
        frame(type: rstStream, flags: 0, stream: stream, payload: [0, 0, 0, UInt8(code)])
    }

    /// The window increments of WINDOW_UPDATE frames for `stream` (0: the connection).
    static func windowIncrements(_ frames: [Frame], stream: UInt32) -> Int {
        frames.filter { $0.type == windowUpdate && $0.stream == stream && $0.payload.count == 4 }.reduce(0) { sum, f in
            sum + (Int(f.payload[0] & 0x7f) << 24 | Int(f.payload[1]) << 16 | Int(f.payload[2]) << 8 | Int(f.payload[3]))
        }
    }

    /// The body bytes the server sent on `stream`, as text.
    static func body(_ frames: [Frame], stream: UInt32) -> String {
        String(decoding: frames.filter { $0.type == data && $0.stream == stream }.flatMap(\.payload), as: UTF8.self)
    }

    struct Frame {
        var type: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]
    }

    /// Parses the frames in `bytes` (the server's, after its preface-less start).
    static func parse(_ bytes: [UInt8]) -> [Frame] {
        var frames: [Frame] = []
        var i = 0
        while i + 9 <= bytes.count {
            let length = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            guard i + 9 + length <= bytes.count else { break }
            let stream = UInt32(bytes[i + 5] & 0x7f) << 24 | UInt32(bytes[i + 6]) << 16 | UInt32(bytes[i + 7]) << 8 | UInt32(bytes[i + 8])
            frames.append(Frame(type: bytes[i + 3], flags: bytes[i + 4], stream: stream, payload: Array(bytes[(i + 9)..<(i + 9 + length)])))
            i += 9 + length
        }
        return frames
    }
}
