import ArgumentParser

@main
struct VecShardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vecshard",
        abstract: "A sharded vector similarity search service.",
        subcommands: [ServeCommand.self, ImportCommand.self, BenchSearchCommand.self, BenchRPCCommand.self, BenchStorageCommand.self, TopologyCommand.self, RecoverCommand.self, BenchIndexCommand.self, BenchHTTPClientCommand.self, StorageStressCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
