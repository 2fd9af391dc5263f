export const handler = async () => {
  return { unbalanced: true ;
};
