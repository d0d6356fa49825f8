"""The v1 contract of Seedbed (generated code lives beside the .proto files)."""
