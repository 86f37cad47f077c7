/** OpenCC's traditional-to-simplified character table: "trad simp|trad simp|…". */
declare module 'opencc-js/dict/TSCharacters' {
  const table: string;
  export default table;
}
