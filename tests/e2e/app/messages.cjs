// The i-th message of the scenario: varied JSON values (objects, strings, numbers, null, unicode).
function messageFor(i) {
  switch (i % 5) {
    case 0:
      return { i, step: `step ${i}`, progress: i / 100 };
    case 1:
      return `message ${i}: 进度 ✓ "quoted" \n newline`;
    case 2:
      return i;
    case 3:
      return [i, null, true, { nested: { deep: [i] } }];
    default:
      return { i, text: 'x'.repeat(200 + i) };
  }
}
module.exports = { messageFor };
