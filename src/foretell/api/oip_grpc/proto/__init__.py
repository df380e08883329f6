"""OIP v2 gRPC messages and service glue, generated from grpc_predict_v2.proto by `make proto`."""
