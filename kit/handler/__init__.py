"""The chat app's WebSocket Lambda handlers: the fixed one (``app``) and a faithful port of the seed's.

Each module is deployable on its own as a single-file Lambda (``app.handler`` / ``seed.handler``): they import
only the standard library, boto3 and botocore. This package file must therefore stay free of imports, so that
loading ``kit.handler.app`` never drags in the rest of ``kit``.
"""
