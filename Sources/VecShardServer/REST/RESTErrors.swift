import Foundation
import NIOHTTP1
import VecShardCluster
import VecShardHTTP
import VecShardSchema
import VecShardShardAPI

// The one place where error kinds and request-decoding failures become HTTP answers (the gRPC
// statuses of the same kinds are in VecShardShardAPI/ShardWire.swift).

extension ErrorKind {
    var httpStatus: HTTPResponseStatus {
        switch self {
        case .invalidArgument: return .badRequest
        case .failedPrecondition: return .preconditionFailed
        case .notFound: return .notFound
        case .alreadyExists, .aborted: return .conflict
        case .resourceExhausted: return .insufficientStorage
        case .deadlineExceeded: return .gatewayTimeout
        case .unavailable, .cancelled: return .serviceUnavailable
        case .unimplemented: return .notImplemented
        case .permissionDenied: return .forbidden
        case .unauthenticated: return .unauthorized
        case .internalError, .dataLoss: return .internalServerError
        }
    }
}

extension ShardCallError: HTTPResponseError {
    public var status: HTTPResponseStatus { kind.httpStatus }

    /// A write that some shards applied and some did not lists both in the error object.
    public func response() -> ServerResponse {
        guard !appliedShards.isEmpty || !failedShards.isEmpty else {
            return errorResponse(status: status, code: code, message: message, headers: headers)
        }
        var text = #"{"error":{"code":"#
        JSONString.append(code, to: &text)
        text += #","message":"#
        JSONString.append(message, to: &text)
        text += #","applied_shards":["# + appliedShards.map(JSONString.quoted).joined(separator: ",")
        text += #"],"failed_shards":["# + failedShards.map(JSONString.quoted).joined(separator: ",") + "]}}"
        return .json(status, text, headers: headers)
    }
}

/// A request body that is not the JSON the endpoint takes, with the field that is wrong.
struct RequestBodyError: HTTPResponseError {
    var status: HTTPResponseStatus { .badRequest }
    var code: String { "invalid_body" }
    var message: String

    init(_ error: any Error) {
        func path(_ keys: [any CodingKey]) -> String {
            var out = ""
            for key in keys {
                if let index = key.intValue { out += "[\(index)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
            }
            return out.isEmpty ? "body" : out
        }
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            let parent = path(context.codingPath)
            message = "field \(parent == "body" ? key.stringValue : parent + "." + key.stringValue) is required"
        case DecodingError.typeMismatch(let type, let context):
            message = "field \(path(context.codingPath)): expected \(Self.describe(type)); \(context.debugDescription)"
        case DecodingError.valueNotFound(let type, let context):
            message = "field \(path(context.codingPath)): expected \(Self.describe(type)), got null"
        case DecodingError.dataCorrupted(let context):
            message = context.codingPath.isEmpty ? "body is not valid JSON: \(context.debugDescription)"
                                                 : "field \(path(context.codingPath)): \(context.debugDescription)"
        default:
            message = "body cannot be read: \(error)"
        }
    }

    init(message: String) { self.message = message }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Float.Type, is Double.Type: return "a number"
        case is Int.Type, is Int64.Type: return "an integer"
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        default: return "\(type)"
        }
    }
}

/// A request that breaks a documented limit, naming the field and the limit.
struct LimitError: HTTPResponseError {
    var status: HTTPResponseStatus { .badRequest }
    var code: String { "limit_exceeded" }
    var message: String
}
