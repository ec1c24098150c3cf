"""Generated code of deviceplugin/v1beta1/api.proto (``make proto``); never edit its *_pb2* modules."""
