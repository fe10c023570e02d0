import ArgumentParser
import VecShardServer

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Work with topology files.",
        subcommands: [Validate.self]
    )

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a topology file offline (exit 1 with the reason if it is invalid).")

        @Argument(help: "The topology file (YAML or JSON).") var file: String

        func run() throws {
            do {
                let topology = try TopologyFile.load(path: file)
                let shards = topology.allShards
                print("\(file): valid; version \(topology.version), \(topology.groups.count) groups, \(shards.count) shards, "
                      + "\(shards.reduce(0) { $0 + $1.shard.replicas.count }) replicas, \(topology.collections.count) routed collections")
            } catch {
                print("\(file): invalid: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
