/// Hands a value to concurrent code (a queue, `concurrentPerform`) when the compiler cannot see
/// the synchronization that makes it safe: the caller guarantees that only one thread uses the
/// value at a time, or that what the threads share is guarded.
@frozen public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    @inlinable public init(_ value: T) { self.value = value }
}
