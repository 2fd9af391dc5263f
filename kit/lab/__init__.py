"""The local lab: AWS's own DynamoDB engine and moto behind the AWS APIs, plus the kit's WebSocket gateway
and Lambda runtime. This package grows with the lab issue; today it holds the engine launcher."""
