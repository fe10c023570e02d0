/// gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
public enum GRPCStatusCode: Int, Sendable, CustomStringConvertible {
    case ok = 0
    case cancelled = 1
    case unknown = 2
    case invalidArgument = 3
    case deadlineExceeded = 4
    case notFound = 5
    case alreadyExists = 6
    case permissionDenied = 7
    case resourceExhausted = 8
    case failedPrecondition = 9
    case aborted = 10
    case outOfRange = 11
    case unimplemented = 12
    case `internal` = 13
    case unavailable = 14
    case dataLoss = 15
    case unauthenticated = 16

    public var description: String {
        switch self {
        case .ok: return "OK"
        case .cancelled: return "CANCELLED"
        case .unknown: return "UNKNOWN"
        case .invalidArgument: return "INVALID_ARGUMENT"
        case .deadlineExceeded: return "DEADLINE_EXCEEDED"
        case .notFound: return "NOT_FOUND"
        case .alreadyExists: return "ALREADY_EXISTS"
        case .permissionDenied: return "PERMISSION_DENIED"
        case .resourceExhausted: return "RESOURCE_EXHAUSTED"
        case .failedPrecondition: return "FAILED_PRECONDITION"
        case .aborted: return "ABORTED"
        case .outOfRange: return "OUT_OF_RANGE"
        case .unimplemented: return "UNIMPLEMENTED"
        case .internal: return "INTERNAL"
        case .unavailable: return "UNAVAILABLE"
        case .dataLoss: return "DATA_LOSS"
        case .unauthenticated: return "UNAUTHENTICATED"
        }
    }
}

import NIOHTTP1

extension GRPCStatusCode {
    /// The status for an HTTP-level refusal of a call (the one place that maps them). Follows
    /// gRPC's HTTP-to-status table where it has an entry (401, 403, 404, 429, 503, 504) and says
    /// what a limit means otherwise: a body or header block over its limit is RESOURCE_EXHAUSTED.
    public init(refusal status: HTTPResponseStatus) {
        switch status {
        case .badRequest: self = .invalidArgument
        case .unauthorized: self = .unauthenticated
        case .forbidden: self = .permissionDenied
        case .notFound, .methodNotAllowed, .notImplemented: self = .unimplemented
        case .payloadTooLarge, .requestHeaderFieldsTooLarge: self = .resourceExhausted
        case .requestTimeout, .tooManyRequests, .serviceUnavailable, .badGateway: self = .unavailable
        case .gatewayTimeout: self = .deadlineExceeded
        default: self = .unknown
        }
    }
}

/// A failed RPC: the status code and a message that names the problem. Handlers throw these;
/// domain errors opt in through `GRPCStatusConvertible`.
public struct GRPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: GRPCStatusCode
    public var message: String

    public init(_ code: GRPCStatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// Domain errors that know their gRPC status (the mapping of each layer's errors lives in one file).
public protocol GRPCStatusConvertible: Error {
    var grpcError: GRPCError { get }
}

/// `grpc-message` is percent-encoded: bytes outside printable ASCII (and `%`) become `%XX`.
enum GRPCMessageEncoding {
    static func encode(_ message: String) -> String {
        var out = ""
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7e && byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    static func decode(_ text: String) -> String {
        var bytes: [UInt8] = []
        var it = Array(text.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%"), it.count >= 2,
               let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// `grpc-timeout`: an ASCII integer of at most 8 digits and a unit (H M S m u n).
enum GRPCTimeout {
    static func parse(_ value: String) -> Int64? { // nanoseconds
        guard let unit = value.last, value.count >= 2, value.count <= 9,
              let amount = Int64(value.dropLast()), amount >= 0 else { return nil }
        switch unit {
        case "H": return amount.multipliedReportingOverflow(by: 3_600_000_000_000).overflow ? .max : amount * 3_600_000_000_000
        case "M": return amount.multipliedReportingOverflow(by: 60_000_000_000).overflow ? .max : amount * 60_000_000_000
        case "S": return amount * 1_000_000_000
        case "m": return amount * 1_000_000
        case "u": return amount * 1_000
        case "n": return amount
        default: return nil
        }
    }

    /// The shortest faithful encoding of `nanoseconds` in at most 8 digits.
    static func encode(nanoseconds: Int64) -> String {
        let ns = max(nanoseconds, 0)
        if ns < 100_000_000 { return "\(ns)n" }
        if ns / 1_000 < 100_000_000 { return "\(ns / 1_000)u" }
        if ns / 1_000_000 < 100_000_000 { return "\(ns / 1_000_000)m" }
        return "\(min(ns / 1_000_000_000, 99_999_999))S"
    }
}
