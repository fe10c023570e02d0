import VecShardRPC
import VecShardSchema

// The one mapping between error kinds and gRPC status codes, both directions from one table.

extension ErrorKind {
    /// Each kind and the gRPC status that carries it.
    private static let statuses: [(kind: ErrorKind, status: GRPCStatusCode)] = [
        (.invalidArgument, .invalidArgument), (.notFound, .notFound), (.alreadyExists, .alreadyExists),
        (.failedPrecondition, .failedPrecondition), (.aborted, .aborted), (.resourceExhausted, .resourceExhausted),
        (.unavailable, .unavailable), (.deadlineExceeded, .deadlineExceeded), (.cancelled, .cancelled),
        (.dataLoss, .dataLoss), (.unauthenticated, .unauthenticated), (.permissionDenied, .permissionDenied),
        (.unimplemented, .unimplemented), (.internalError, .internal),
    ]

    /// The gRPC status a shard answers with for an error of this kind.
    public var grpcStatus: GRPCStatusCode { Self.statuses.first { $0.kind == self }!.status }

    /// The kind of a gRPC status a shard answered with (OUT_OF_RANGE is the caller's fault too;
    /// OK, UNKNOWN and INTERNAL are internal errors).
    public init(_ status: GRPCStatusCode) {
        self = status == .outOfRange ? .invalidArgument : Self.statuses.first { $0.status == status }?.kind ?? .internalError
    }
}
