// The quiz challenge's questions (issue 14, docs/challenges.md): short, for anyone who reads
// English, with one plainly right answer among four. Written for seckill. `answer` is the index of
// the right choice in `choices` as written here; the page sees them shuffled (src/domain/challenge.ts).
// A question's index is part of its challenge tokens: append new questions, never reorder.

export interface QuizQuestion {
  readonly question: string;
  readonly choices: readonly [string, string, string, string];
  readonly answer: 0 | 1 | 2 | 3;
}

export const QUIZ: readonly QuizQuestion[] = [
  { question: 'What is 2 + 3?', choices: ['5', '6', '4', '23'], answer: 0 },
  { question: 'What is 7 − 4?', choices: ['11', '3', '4', '2'], answer: 1 },
  { question: 'What is 3 × 3?', choices: ['6', '33', '9', '12'], answer: 2 },
  { question: 'What is 10 ÷ 2?', choices: ['8', '12', '20', '5'], answer: 3 },
  { question: 'What is 6 + 6?', choices: ['12', '66', '10', '13'], answer: 0 },
  { question: 'What is 9 − 1?', choices: ['10', '8', '7', '91'], answer: 1 },
  { question: 'What is 4 × 2?', choices: ['6', '42', '8', '2'], answer: 2 },
  { question: 'What is 15 + 5?', choices: ['10', '25', '155', '20'], answer: 3 },
  { question: 'Which of these is a colour?', choices: ['Green', 'Table', 'Seven', 'Run'], answer: 0 },
  { question: 'Which of these is an animal?', choices: ['Spoon', 'Horse', 'Cloud', 'Blue'], answer: 1 },
  { question: 'Which of these is a fruit?', choices: ['Brick', 'Chair', 'Apple', 'Shoe'], answer: 2 },
  { question: 'Which day comes after Monday?', choices: ['Sunday', 'Friday', 'Monday', 'Tuesday'], answer: 3 },
  { question: 'How many days are in a week?', choices: ['7', '5', '10', '12'], answer: 0 },
  { question: 'How many legs does a cat have?', choices: ['2', '4', '6', '8'], answer: 1 },
  { question: 'Which is the largest number?', choices: ['12', '9', '40', '31'], answer: 2 },
  { question: 'Which is the smallest number?', choices: ['8', '15', '11', '3'], answer: 3 },
  { question: 'What is the opposite of "hot"?', choices: ['Cold', 'Warm', 'Red', 'Fast'], answer: 0 },
  { question: 'What is the opposite of "up"?', choices: ['Left', 'Down', 'Over', 'Big'], answer: 1 },
  { question: 'Which word is a number?', choices: ['House', 'Green', 'Three', 'Cat'], answer: 2 },
  { question: 'Which month comes after January?', choices: ['March', 'December', 'June', 'February'], answer: 3 },
  { question: 'What is 20 − 10?', choices: ['10', '30', '2', '12'], answer: 0 },
  { question: 'What is 5 × 5?', choices: ['10', '25', '55', '20'], answer: 1 },
  { question: 'What is 8 + 1?', choices: ['81', '7', '9', '10'], answer: 2 },
  { question: 'What is 100 + 1?', choices: ['99', '1001', '110', '101'], answer: 3 },
  { question: 'Which letter comes after A?', choices: ['B', 'C', 'Z', 'D'], answer: 0 },
  { question: 'Which of these can fly?', choices: ['Fish', 'Bird', 'Stone', 'Car'], answer: 1 },
  { question: 'How many hours are in a day?', choices: ['12', '60', '24', '7'], answer: 2 },
  { question: 'What colour is snow?', choices: ['Black', 'Green', 'Purple', 'White'], answer: 3 },
  { question: 'What is 2 × 6?', choices: ['12', '8', '26', '4'], answer: 0 },
  { question: 'What is 14 − 7?', choices: ['21', '7', '147', '6'], answer: 1 },
  { question: 'Which of these do you drink?', choices: ['Bread', 'Sand', 'Water', 'Paper'], answer: 2 },
  { question: 'How many sides does a triangle have?', choices: ['4', '5', '6', '3'], answer: 3 },
  { question: 'What is 1 + 1?', choices: ['2', '11', '1', '3'], answer: 0 },
  { question: 'What is 30 + 30?', choices: ['90', '60', '3030', '33'], answer: 1 },
  { question: 'Which of these is a vegetable?', choices: ['Lamp', 'Phone', 'Carrot', 'Sock'], answer: 2 },
  { question: 'Which number is even?', choices: ['3', '7', '9', '4'], answer: 3 },
];
