import CNGHTTP2
import NIOHTTP1

/// The header list of every request on one client connection, laid out for nghttp2 in areas the
/// connection keeps. The field names and the `:scheme` and `:authority` values (the same on every
/// request of a connection) are encoded once; the per-request bytes (`:method`, `:path`,
/// `content-length`, regular fields) are copied into a reused scratch area. Submitting a request
/// thus allocates nothing for its header list, where a `HeaderBlock` costs an array of string
/// pairs per request.
///
/// The list is the one `HeaderBlock` built: `:method`, `:scheme`, `:authority`, `:path`, then
/// `content-length` when there is a body, then the regular fields with lower-cased names and the
/// connection-specific ones left out. nghttp2 copies the list when the request is submitted, so
/// nothing refers to the areas once `withHeaderList` returns. Touched only on the connection's
/// event loop.
final class RequestHeaderEncoder {
    private typealias Bytes = (start: UnsafeMutablePointer<UInt8>, count: Int)

    private let constants: UnsafeMutablePointer<UInt8>
    private let methodName: Bytes, schemeName: Bytes, scheme: Bytes, authorityName: Bytes, authority: Bytes
    private let pathName: Bytes, contentLengthName: Bytes
    private var scratch: UnsafeMutablePointer<UInt8>
    private var scratchCapacity: Int
    private var nv: UnsafeMutablePointer<nghttp2_nv>
    private var nvCapacity: Int

    static let initialScratchBytes = 512
    /// Larger scratch areas (a request with big header fields) are released after use, so an
    /// idle connection does not keep them.
    static let retainedScratchBytes = 8192
    static let initialFields = 16
    static let retainedFields = 128
    /// Bytes reserved for the decimal digits of `content-length`.
    private static let maxDigits = 20

    init(scheme: String, authority: String) {
        let parts = [":method", ":scheme", scheme, ":authority", authority, ":path", "content-length"]
        let total = parts.reduce(0) { $0 + $1.utf8.count }
        let constants = UnsafeMutablePointer<UInt8>.allocate(capacity: max(total, 1))
        var spans: [Bytes] = []
        var offset = 0
        for part in parts {
            let count = HeaderBlock.copy(part, to: constants + offset, lowercasing: false)
            spans.append((constants + offset, count))
            offset += count
        }
        self.constants = constants
        (methodName, schemeName, self.scheme, authorityName, self.authority, pathName, contentLengthName) =
            (spans[0], spans[1], spans[2], spans[3], spans[4], spans[5], spans[6])
        scratchCapacity = Self.initialScratchBytes
        scratch = .allocate(capacity: scratchCapacity)
        nvCapacity = Self.initialFields
        nv = .allocate(capacity: nvCapacity)
    }

    deinit {
        constants.deallocate()
        scratch.deallocate()
        nv.deallocate()
    }

    /// Calls `body` with the request's header list, valid only during the call.
    func withHeaderList<R>(for request: ClientRequest, _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        var needed = request.method.utf8.count + request.path.utf8.count + Self.maxDigits
        var fields = 5
        for (name, value) in request.headers {
            needed += name.utf8.count + value.utf8.count
            fields += 1
        }
        reserve(bytes: needed, fields: fields)
        var used = 0
        var count = 0
        set(count, name: methodName, value: scratch, HeaderBlock.copy(request.method, to: scratch, lowercasing: false))
        used += nv[count].valuelen
        count += 1
        set(count, name: schemeName, value: scheme.start, scheme.count)
        count += 1
        set(count, name: authorityName, value: authority.start, authority.count)
        count += 1
        set(count, name: pathName, value: scratch + used, HeaderBlock.copy(request.path, to: scratch + used, lowercasing: false))
        used += nv[count].valuelen
        count += 1
        if let requestBody = request.body {
            let digits = Self.writeDecimal(requestBody.readableBytes, to: scratch + used)
            set(count, name: contentLengthName, value: scratch + used, digits)
            used += digits
            count += 1
        }
        for (name, value) in request.headers where !HeaderBlock.isConnectionSpecific(name) {
            let nameStart = scratch + used
            let nameCount = HeaderBlock.copy(name, to: nameStart, lowercasing: true)
            used += nameCount
            let valueStart = scratch + used
            let valueCount = HeaderBlock.copy(value, to: valueStart, lowercasing: false)
            used += valueCount
            (nv + count).initialize(to: nghttp2_nv(name: nameStart, value: valueStart, namelen: nameCount, valuelen: valueCount,
                                                   flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
            count += 1
        }
        let result = body(nv, count)
        shrinkIfLarge()
        return result
    }

    @inline(__always)
    private func set(_ index: Int, name: Bytes, value: UnsafeMutablePointer<UInt8>, _ valueCount: Int) {
        (nv + index).initialize(to: nghttp2_nv(name: name.start, value: value, namelen: name.count, valuelen: valueCount,
                                               flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
    }

    private func reserve(bytes: Int, fields: Int) {
        if bytes > scratchCapacity {
            scratch.deallocate()
            scratchCapacity = max(bytes, scratchCapacity * 2)
            scratch = .allocate(capacity: scratchCapacity)
        }
        if fields > nvCapacity {
            nv.deallocate()
            nvCapacity = max(fields, nvCapacity * 2)
            nv = .allocate(capacity: nvCapacity)
        }
    }

    private func shrinkIfLarge() {
        if scratchCapacity > Self.retainedScratchBytes {
            scratch.deallocate()
            scratchCapacity = Self.initialScratchBytes
            scratch = .allocate(capacity: scratchCapacity)
        }
        if nvCapacity > Self.retainedFields {
            nv.deallocate()
            nvCapacity = Self.initialFields
            nv = .allocate(capacity: nvCapacity)
        }
    }

    /// Writes `value` (not negative) in decimal; returns the number of digits.
    private static func writeDecimal(_ value: Int, to destination: UnsafeMutablePointer<UInt8>) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 { digits += 1; rest /= 10 }
        rest = value
        for i in stride(from: digits - 1, through: 0, by: -1) {
            destination[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        }
        return digits
    }
}
