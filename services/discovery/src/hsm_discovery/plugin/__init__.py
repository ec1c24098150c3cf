"""The kubelet device plugin: one extended resource ``hsm.j5t.io/<HSMDevice>`` per HSMDevice watched.

``supervisor`` serves and registers the plugins and follows kubelet restarts; ``servicer`` answers the
kubelet; ``devices`` decides what is offered and allocated (pure); ``resource`` is the state the three share.
Only this package talks gRPC.
"""
