"""The gRPC sidecar: durabletask SDK clients and workers against wftest serve."""
