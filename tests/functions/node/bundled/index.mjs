// A function that bundles its own copy of the SDK package: it must get its own, not the runtime's.
import { marker } from '@aws-sdk/client-dynamodb';

export const handler = async () => ({ marker });
