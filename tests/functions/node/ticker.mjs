// A module that starts a timer at import (init) which counts every 20 ms; the handler reads the count.
// Between invocations Lambda freezes the environment, init-time timers included.
let ticks = 0;
setInterval(() => {
  ticks += 1;
}, 20);

export const handler = async (event) => {
  await new Promise((resolve) => setTimeout(resolve, (event.linger ?? 0) * 1000));
  return { ticks };
};
