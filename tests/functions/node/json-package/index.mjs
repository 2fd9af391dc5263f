export const handler = async () => {
  console.info('kept at info');
  console.debug('dropped at debug');
  console.log({ structured: true });
  console.error('failed', new Error('inside'));
  return 'ok';
};
