/// The deadline of the search being served, as a task-local value, so that the engine's and
/// storage's loops stop at it (not only when the task is cancelled, which the REST layer does a
/// grace period later): a search whose caller's deadline has passed stops within one check
/// interval (65,536 rows of a scan, 1,024 HNSW expansions) instead of running to its end and
/// holding up the searches behind it. Set by the shard for each search call.
public enum SearchDeadline {
    @TaskLocal public static var current: ContinuousClock.Instant?

    /// The search should stop now: its task was cancelled or its deadline passed.
    public static var shouldStop: Bool {
        if Task.isCancelled { return true }
        guard let deadline = current else { return false }
        return ContinuousClock.now >= deadline
    }

    /// The deadline has passed (as opposed to a cancellation).
    public static var passed: Bool { current.map { ContinuousClock.now >= $0 } ?? false }
}
