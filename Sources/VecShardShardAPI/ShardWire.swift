import VecShardRPC
import VecShardSchema

// The one mapping between error kinds and gRPC status codes, both directions.

extension ErrorKind {
    /// The gRPC status a shard answers with for an error of this kind.
    public var grpcStatus: GRPCStatusCode {
        switch self {
        case .invalidArgument: return .invalidArgument
        case .notFound: return .notFound
        case .alreadyExists: return .alreadyExists
        case .failedPrecondition: return .failedPrecondition
        case .aborted: return .aborted
        case .resourceExhausted: return .resourceExhausted
        case .unavailable: return .unavailable
        case .deadlineExceeded: return .deadlineExceeded
        case .cancelled: return .cancelled
        case .dataLoss: return .dataLoss
        case .unauthenticated: return .unauthenticated
        case .permissionDenied: return .permissionDenied
        case .unimplemented: return .unimplemented
        case .internalError: return .internal
        }
    }

    /// The kind of a gRPC status a shard answered with.
    public init(_ status: GRPCStatusCode) {
        switch status {
        case .invalidArgument, .outOfRange: self = .invalidArgument
        case .notFound: self = .notFound
        case .alreadyExists: self = .alreadyExists
        case .failedPrecondition: self = .failedPrecondition
        case .aborted: self = .aborted
        case .resourceExhausted: self = .resourceExhausted
        case .unavailable: self = .unavailable
        case .deadlineExceeded: self = .deadlineExceeded
        case .cancelled: self = .cancelled
        case .dataLoss: self = .dataLoss
        case .unauthenticated: self = .unauthenticated
        case .permissionDenied: self = .permissionDenied
        case .unimplemented: self = .unimplemented
        case .ok, .unknown, .internal: self = .internalError
        }
    }
}
