// CommonJS, found as cjs/handler.js by the handler "cjs/handler.run".
const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');

exports.run = async () => ({ module: 'commonjs', sdk: typeof DynamoDBClient });
