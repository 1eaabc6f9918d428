/** The `bindings` package ships no types: it loads a compiled addon by its target name. */
declare module 'bindings' {
  function bindings(name: string): any;
  export default bindings;
}
