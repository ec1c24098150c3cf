"""Generated code of hsm/v1/hsm.proto (``make proto``); do not edit the *_pb2* modules by hand."""
