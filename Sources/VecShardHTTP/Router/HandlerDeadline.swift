import NIOConcurrencyHelpers

/// Runs a handler under a deadline: whichever comes first, the handler's result or the
/// deadline, is the answer, delivered exactly once. When the deadline wins, the handler's task
/// is cancelled at once (its late result is dropped); when the caller's task is cancelled (the
/// client reset the stream or closed the connection), the handler's task is cancelled too.
/// The answer never waits for a handler that ignores cancellation.
///
/// The timer is `DeadlineTimer`'s thread, not a sleeping task: searches run synchronously on
/// the cooperative pool (two threads on two cores) and would keep a sleeping task from waking
/// up until they are done, which is exactly when the deadline is no longer needed.
public enum HandlerDeadline {
    public static func run<T: Sendable>(until deadline: ContinuousClock.Instant,
                                        onTimeout: @escaping @Sendable () -> any Error,
                                        _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard ContinuousClock.now < deadline else { throw onTimeout() }
        let race = Race<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                race.waiting = continuation
                // Unstructured tasks (they inherit task-local values such as a request deadline):
                // a task group would wait for a handler that does not stop when cancelled.
                let work = Task {
                    do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
                }
                let left = deadline - ContinuousClock.now
                let nanos = max(0, left.components.seconds * 1_000_000_000 + left.components.attoseconds / 1_000_000_000)
                let timer = DeadlineTimer.shared.schedule(in: nanos) { race.finish(.failure(onTimeout())) }
                race.started(work: work, timer: timer)
            }
        } onCancel: {
            race.cancel()
        }
    }

    /// The state shared by the handler, the timer and the caller; every transition under the lock.
    private final class Race<T: Sendable>: @unchecked Sendable {
        private let lock = NIOLock()
        private var work: Task<Void, Never>?
        private var timer: UInt64?
        private var done = false
        private var cancelled = false
        /// Set before either task starts.
        var waiting: CheckedContinuation<T, any Error>?

        func started(work: Task<Void, Never>, timer: UInt64) {
            let (finished, wasCancelled) = lock.withLock { () -> (Bool, Bool) in
                if !done {
                    self.work = work
                    self.timer = timer
                }
                return (done, cancelled)
            }
            if finished { DeadlineTimer.shared.cancel(timer) } // the handler answered before the tasks were recorded
            if wasCancelled { work.cancel() } // the caller was cancelled before that
        }

        /// Delivers `result` if nothing was delivered yet; stops the other racer.
        func finish(_ result: Result<T, any Error>) {
            let (continuation, work, timer) = lock.withLock { () -> (CheckedContinuation<T, any Error>?, Task<Void, Never>?, UInt64?) in
                guard !done else { return (nil, nil, nil) }
                done = true
                defer { waiting = nil; self.work = nil; self.timer = nil }
                return (waiting, self.work, self.timer)
            }
            guard let continuation else { return }
            work?.cancel() // the handler, when the deadline won (a finished handler ignores it)
            if let timer { DeadlineTimer.shared.cancel(timer) }
            continuation.resume(with: result)
        }

        /// The caller was cancelled: cancel the handler. The timer keeps running, so a handler
        /// that ignores cancellation is still answered for at its deadline.
        func cancel() {
            let work = lock.withLock { () -> Task<Void, Never>? in
                cancelled = true
                return self.work
            }
            work?.cancel()
        }
    }
}
